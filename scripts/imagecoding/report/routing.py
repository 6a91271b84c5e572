"""The report's routing section: per scheme the threshold and its certificate, and the cost/accuracy curve as a
static SVG chart (report/charts.py), the chosen point against the LLM on every image and the cheap method alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .charts import chart_svg


def curve_svg(curve: pd.DataFrame, summary: dict) -> str:
    """Accuracy against the share of images sent to the LLM, with its 95% band; the chosen threshold as a marked
    point, the target and the cheap method alone as dashed rules (the LLM on every image is the curve's right end)."""
    import altair as alt

    scheme = summary["scheme"]
    data = curve.assign(kind="curve", sent=curve["share_sent"])
    # the accuracies that matter lie close together near the top: the axis starts a little below the lowest of them
    lowest = min([float(curve["ci_low"].min()), summary["target_accuracy"], summary["cheap_only_accuracy"] or 1.0])
    domain = [max(0.0, np.floor((lowest - 0.02) * 20) / 20), 1.0]
    x = alt.X("sent:Q", title="share of images sent to the LLM", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1]))
    y = alt.Y("accuracy:Q", title="accuracy against the gold codes", axis=alt.Axis(format="%"),
              scale=alt.Scale(domain=domain, clamp=True))
    tooltip = [alt.Tooltip("threshold:Q", format=".2f"), alt.Tooltip("sent:Q", format=".1%"), "requests:Q",
               alt.Tooltip("dollars:Q", format="$.2f"), alt.Tooltip("accuracy:Q", format=".3f"),
               alt.Tooltip("accuracy_bound:Q", format=".3f")]
    curve_only = alt.datum.kind == "curve"
    band = alt.Chart().transform_filter(curve_only).mark_area(opacity=0.25, color="#3366aa").encode(
        x=x, y=alt.Y("ci_low:Q", scale=alt.Scale(domain=domain, clamp=True, zero=False)), y2="ci_high:Q")
    line = alt.Chart().transform_filter(curve_only).mark_line(point=True, color="#3366aa").encode(x=x, y=y, tooltip=tooltip)
    chosen = alt.Chart().transform_filter(curve_only & (alt.datum.chosen == True)).mark_point(  # noqa: E712
        shape="diamond", size=220, filled=True, color="#d62728").encode(x=x, y=y, tooltip=tooltip)
    label = alt.Chart().transform_filter(curve_only & (alt.datum.chosen == True)).mark_text(  # noqa: E712
        align="left", dx=10, dy=-10, color="#d62728").encode(x=x, y=y, text=alt.value(
            f"chosen: threshold {summary['threshold']:.2f}"))
    rules = []
    for name, value in (("target accuracy", summary["target_accuracy"]), ("cheap method only", summary["cheap_only_accuracy"])):
        if value is not None:
            rules.append({"kind": "reference", "reference": name, "ref": float(value)})
    layers = [band, line, chosen, label]
    if rules:
        data = pd.concat([data, pd.DataFrame(rules)], ignore_index=True)
        layers.append(alt.Chart().transform_filter(alt.datum.kind == "reference").mark_rule(strokeDash=[5, 3]).encode(
            y=alt.Y("ref:Q", scale=alt.Scale(domain=domain, clamp=True)),
            color=alt.Color("reference:N", title=None, scale=alt.Scale(scheme="dark2"), legend=alt.Legend(orient="bottom"))))
    chart = alt.layer(*layers, data=data).properties(width=420, height=240, title=f"{scheme}: cost and accuracy of routing")
    return chart_svg(chart, f"routing curve of {scheme}")


def routing_view(folder: str | Path) -> dict:
    """The routing summary and, per scheme, its figures and (where there are codes) its curve as SVG."""
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    schemes = []
    for scheme, found in summary["schemes"].items():
        view = {"summary": found, "svg": None}
        path = folder / f"{scheme}_curve.csv"
        if path.is_file() and path.stat().st_size > 1:
            curve = pd.read_csv(path)
            if len(curve):
                view["svg"] = curve_svg(curve, found)
        schemes.append(view)
    return {"summary": summary, "schemes": schemes}
