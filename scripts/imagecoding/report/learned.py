"""The report's learned-classifier section: what each variable was learned from, why one was skipped, and its
learning curve as a static SVG chart (report/charts.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .charts import chart_svg

# The consensus and the routed codes are left out: they count the learned classifier's own codes.
REFERENCE = {"clip": "zero-shot CLIP", "ensemble": "ensemble", "multimodal": "multimodal LLM", "frames": "frame coding"}
MEASURES = {"accuracy": "Accuracy", "macro_f1": "Macro-F1"}


def curve_points(curve: pd.DataFrame, metrics: pd.DataFrame | None, variable: str, level: float = 0.95) -> pd.DataFrame:
    """Per number of codes and measure: the mean over repeated draws and its t interval.

    The last point (all codes) is the out-of-fold result; its band is the bootstrap interval of
    results/validation/metrics.csv where there is one.
    """
    from scipy import stats

    rows = []
    largest = int(curve["n_codes"].max())
    for (n_codes, measure), values in curve.melt(id_vars=["n_codes"], value_vars=list(MEASURES),
                                                  var_name="measure").groupby(["n_codes", "measure"]):
        values = values["value"].to_numpy(dtype=float)
        mean, low, high = float(values.mean()), np.nan, np.nan
        if len(values) > 1:
            half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
            low, high = mean - half, mean + half
        if n_codes == largest and metrics is not None:
            found = _gold_metric(metrics, "learned", variable, measure)
            if found is not None:
                low, high = found["ci_low"], found["ci_high"]
        rows.append({"n_codes": int(n_codes), "measure": MEASURES[measure], "mean": mean,
                     "low": float(np.clip(low, 0, 1)) if low == low else mean,
                     "high": float(np.clip(high, 0, 1)) if high == high else mean})
    return pd.DataFrame(rows)


def _gold_metric(metrics: pd.DataFrame, method: str, variable: str, metric: str):
    rows = metrics[(metrics["method"] == method) & (metrics["variable"] == variable) & (metrics["against"] == "gold")
                   & (metrics["metric"] == metric) & metrics["class"].isna()]
    return None if rows.empty else rows.iloc[0]


def references(metrics: pd.DataFrame | None, variable: str) -> pd.DataFrame:
    """The other methods' accuracy and macro-F1 against the same gold codes: the curve's reference lines."""
    rows = []
    for method, label in REFERENCE.items():
        for measure, name in MEASURES.items():
            found = None if metrics is None else _gold_metric(metrics, method, variable, measure)
            if found is not None and found["value"] == found["value"]:
                rows.append({"method": label, "measure": name, "value": float(found["value"])})
    return pd.DataFrame(rows, columns=["method", "measure", "value"])


def curve_svg(points: pd.DataFrame, reference: pd.DataFrame, variable: str) -> str:
    """Accuracy and macro-F1 against the number of codes: a line with its band, other methods as rules."""
    import altair as alt

    x = alt.X("n_codes:Q", title="human codes learned from", scale=alt.Scale(type="log", nice=False))
    y = alt.Y("mean:Q", title=None, scale=alt.Scale(domain=[0, 1]))
    band = alt.Chart().mark_area(opacity=0.25, color="#3366aa").encode(x=x, y="low:Q", y2="high:Q")
    line = alt.Chart().mark_line(point=True, color="#3366aa").encode(
        x=x, y=y, tooltip=["n_codes:Q", alt.Tooltip("mean:Q", format=".2f"), alt.Tooltip("low:Q", format=".2f"),
                           alt.Tooltip("high:Q", format=".2f")])
    layers = [band, line]
    data = points.assign(kind="learned")
    if len(reference):
        data = pd.concat([data, reference.rename(columns={"value": "ref"}).assign(kind="reference")], ignore_index=True)
        colour = alt.Color("method:N", title="other methods, same codes", scale=alt.Scale(scheme="dark2"),
                           legend=alt.Legend(orient="bottom"))
        rule = alt.Chart().transform_filter(alt.datum.kind == "reference").mark_rule(strokeDash=[5, 3]).encode(
            y=alt.Y("ref:Q", scale=alt.Scale(domain=[0, 1])), color=colour)
        layers.append(rule)
    learned = [layer.transform_filter(alt.datum.kind == "learned") for layer in layers[:2]]
    chart = alt.layer(*learned, *layers[2:], data=data).properties(width=260, height=200).facet(
        column=alt.Column("measure:N", title=None, sort=list(MEASURES.values()))
    ).properties(title=f"{variable}: learned, by number of codes")
    return chart_svg(chart, f"learning curve of {variable}")


def learned_view(folder: str | Path, metrics: pd.DataFrame | None) -> list[dict]:
    """One entry per variable: its card, and its learning curve as SVG when the variable was learned."""
    views = []
    for card_path in sorted(Path(folder).glob("*.json")):
        if card_path.stem.endswith("_model"):
            continue
        card = json.loads(card_path.read_text())
        view = {"card": card, "svg": None, "curve": []}
        curve_path = card_path.with_name(f"{card_path.stem}_curve.csv")
        if card["status"] == "learned" and curve_path.is_file() and curve_path.stat().st_size > 1:
            curve = pd.read_csv(curve_path)
            if len(curve):
                points = curve_points(curve, metrics, card["variable"])
                view["svg"] = curve_svg(points, references(metrics, card["variable"]), card["variable"])
                view["curve"] = points[points["measure"] == "Accuracy"].to_dict("records")
        views.append(view)
    return views

