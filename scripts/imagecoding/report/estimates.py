"""The report's estimates section: per variable, the shares of each category per account and per period, the
machine's beside the human-only and the prediction-powered ones with their intervals, as static SVG charts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .charts import chart_svg

LABELS = {"clip": "zero-shot CLIP", "learned": "learned classifier", "ensemble": "ensemble", "frames": "frame coding",
          "multimodal": "multimodal LLM", "routed": "routed", "consensus": "consensus"}
KINDS = {"naive": "machine only", "human": "human codes only", "ppi": "corrected (PPI)"}
GROUPINGS = {"account": "per account", "period": "per period"}
MOST_GROUPS = 20  # a chart of hundreds of accounts reads as nothing; prevalence.csv has them all


def long_shares(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per group, category and kind of estimate: value, low, high (the machine's share has no interval)."""
    out = []
    for row in rows.to_dict("records"):
        for kind, label in KINDS.items():
            value = row[kind]
            if value != value:
                continue
            low, high = (value, value) if kind == "naive" else (row[f"{kind}_low"], row[f"{kind}_high"])
            out.append({"group": str(row["group"]), "category": row["category"], "estimate": label, "value": value,
                        "low": low, "high": high, "n_coded": int(row["n_coded"])})
    return pd.DataFrame(out, columns=["group", "category", "estimate", "value", "low", "high", "n_coded"])


def shares_svg(rows: pd.DataFrame, title: str, level: float) -> str:
    """Dots for the shares and lines for their intervals, one panel per category, a row per group."""
    import altair as alt

    data = long_shares(rows)
    colour = alt.Color("estimate:N", title=None, sort=list(KINDS.values()),
                       scale=alt.Scale(domain=list(KINDS.values()), range=["#999999", "#e08214", "#3366aa"]),
                       legend=alt.Legend(orient="bottom", columnPadding=18))
    y = alt.Y("group:N", title=None)
    offset = alt.YOffset("estimate:N", sort=list(KINDS.values()))
    x = alt.X("value:Q", title="share of images", axis=alt.Axis(format="%"),
              scale=alt.Scale(domain=[0, 1]))
    tooltip = ["group:N", "category:N", "estimate:N", alt.Tooltip("value:Q", format=".1%"),
               alt.Tooltip("low:Q", format=".1%"), alt.Tooltip("high:Q", format=".1%"), "n_coded:Q"]
    bars = alt.Chart().mark_rule(strokeWidth=2).encode(x="low:Q", x2="high:Q", y=y, yOffset=offset, color=colour)
    dots = alt.Chart().mark_point(filled=True, size=40).encode(x=x, y=y, yOffset=offset, color=colour, tooltip=tooltip)
    groups = data["group"].nunique()
    chart = alt.layer(bars, dots, data=data).properties(width=170, height=max(40, 26 * groups)).facet(
        column=alt.Column("category:N", title=None)).properties(
        title=alt.TitleParams(title, subtitle=f"intervals at {level:.0%}", anchor="start"))
    return chart_svg(chart, title)


def estimates_view(prevalence_path: str | Path, summary_path: str | Path) -> dict:
    """The section's content: the summary (validity, dates), the headline sentences and a chart per variable
    and grouping for the method the report charts."""
    table = pd.read_csv(prevalence_path, keep_default_na=False, na_values=[""])
    summary = json.loads(Path(summary_path).read_text())
    charts = []
    for variable, method in summary["report_method"].items():
        rows = table[(table["variable"] == variable) & (table["method"] == method)]
        overall = rows[rows["group_by"] == "overall"]
        present = [g for g in GROUPINGS if (rows["group_by"] == g).any()]
        label = LABELS.get(method, method)
        # The overall shares head every grouped chart; alone only where there are no groups.
        for group_by in present or ["overall"]:
            grouped = rows[rows["group_by"] == group_by]
            sizes = grouped.groupby("group")["n_images"].first()
            notes = set()
            if len(sizes) > MOST_GROUPS:
                keep = (sizes.sort_index() if group_by == "period" else sizes.sort_values(ascending=False))
                keep = keep.index[-MOST_GROUPS:] if group_by == "period" else keep.index[:MOST_GROUPS]
                grouped = grouped[grouped["group"].isin(keep)]
                which = "latest" if group_by == "period" else "largest"
                notes.add(f"the {MOST_GROUPS} {which} of {len(sizes)} groups; all are in results/estimates/prevalence.csv")
            part = pd.concat([overall, grouped], ignore_index=True) if present else overall
            title = f"{variable} by {label}, {GROUPINGS.get(group_by, 'all images')}"
            charts.append({"variable": variable, "method": label, "group_by": group_by, "title": title,
                           "svg": shares_svg(part, title, summary["level"]),
                           "notes": sorted(notes | {n for n in part["note"].dropna() if n})})
    return {"summary": summary, "sentences": summary["sentences"], "charts": charts}
