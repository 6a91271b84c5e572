"""The report's validation section: plain sentences, metric tables, confusion heatmaps, confused pairs, coder reliability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..validation.metrics import METHOD_NAMES, sentences

MERGED_COLUMN = {"clip": "{v}", "learned": "learned_{v}", "ensemble": "ensemble_{v}", "multimodal": "multimodal_{v}",
                 "routed": "routed_{v}", "consensus": "consensus_{v}", "frames": "{v}"}


def _cell(rows: pd.DataFrame, metric: str, percent: bool = False) -> str:
    found = rows[rows["metric"] == metric]
    if not len(found) or np.isnan(found["value"].iloc[0]):
        return "–"
    row = found.iloc[0]
    scale, form = (100, "{:.0f}%") if percent else (1, "{:.2f}")
    text = form.format(row["value"] * scale)
    if not np.isnan(row["ci_low"]):
        text += f" [{form.format(row['ci_low'] * scale)}, {form.format(row['ci_high'] * scale)}]"
    return text


def validation_view(metrics: pd.DataFrame, gold: pd.DataFrame, confusion_dir: str | Path, merged: pd.DataFrame,
                    report: pd.DataFrame, per_pair: int = 4) -> dict:
    """Everything the section shows; `images` lists the ids that need thumbnails."""
    overall = metrics[metrics["class"].isna()]
    tables, heatmaps, pairs, wanted = [], [], [], set()
    by_image = merged.dropna(subset=["image_id"]).drop_duplicates("image_id").set_index("image_id")
    for (method, variable), rows in overall[overall["against"] == "gold"].groupby(["method", "variable"], sort=False):
        coders = overall[(overall["method"] == method) & (overall["variable"] == variable) & overall["against"].str.startswith("coder:")]
        tables.append({
            "method": METHOD_NAMES.get(method, method), "variable": variable, "n": int(rows["n"].max()),
            "accuracy": _cell(rows, "accuracy", percent=True), "macro_f1": _cell(rows, "macro_f1"), "kappa": _cell(rows, "kappa"),
            "coders": [(a.split(":", 1)[1], f"κ {k:.2f}" if not np.isnan(k) else "κ –") for a, k in
                       coders[coders["metric"] == "kappa"][["against", "value"]].itertuples(index=False)],
        })
        path = Path(confusion_dir) / f"{method}__{variable}.csv"
        if path.is_file():
            matrix = pd.read_csv(path, index_col=0)
            peak = max(1, int(matrix.to_numpy().max()))
            heatmaps.append({"title": f"{METHOD_NAMES.get(method, method)} · {variable}", "columns": list(matrix.columns),
                             "rows": [(index, [(int(v), round(v / peak, 2)) for v in row]) for index, row in matrix.iterrows()]})
            column = MERGED_COLUMN[method].format(v=variable)
            if column in by_image.columns:
                truth = gold[gold["variable"] == variable].set_index("image_id")["value"]
                said = by_image[column].reindex(truth.index)
                wrong = pd.DataFrame({"gold": truth, "method": said}).dropna()
                wrong = wrong[wrong["gold"] != wrong["method"]]
                confused = sorted(wrong.groupby(["gold", "method"]), key=lambda item: -len(item[1]))[:3]
                for (expected, got), group in confused:
                    ids = list(group.index[:per_pair])
                    wanted.update(ids)
                    pairs.append({"title": f"{METHOD_NAMES.get(method, method)} · {variable}", "gold": expected,
                                  "method": got, "count": len(group), "images": ids})
    coders = overall[overall["method"] == "coders"]
    reliability = [
        {"variable": variable, "alpha": _cell(rows, "krippendorff_alpha"),
         "n": int(rows.loc[rows["metric"] == "krippendorff_alpha", "n"].max()) if (rows["metric"] == "krippendorff_alpha").any() else 0,
         "pairs": [(a, f"{k:.2f}") for a, k in rows[rows["metric"] == "kappa"][["against", "value"]].itertuples(index=False)]}
        for variable, rows in coders.groupby("variable", sort=False)
    ]
    problems = report[(report["count"] > 0) & (report["problem"] != "codes read")].to_dict("records")
    weighted = bool(metrics.loc[metrics["against"] == "gold", "weighted"].all()) if "weighted" in metrics else False
    return {"sentences": sentences(metrics), "tables": tables, "weighted": weighted, "heatmaps": heatmaps, "pairs": pairs,
            "reliability": reliability, "problems": problems, "images": wanted}
