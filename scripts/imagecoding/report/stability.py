"""The report's stability section: per LLM task and variable, its agreement with itself beside its agreement with gold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stability.figures import ALPHA_GOOD, ALPHA_TENTATIVE, sentences
from ..validation.metrics import METHOD_NAMES


def _alpha(rows: pd.DataFrame, kind: str) -> tuple[str, str]:
    """The cell text of alpha with its interval, and its flag (ok, tentative, low) for the table's colour."""
    found = rows[(rows["kind"] == kind) & (rows["metric"] == "krippendorff_alpha")]
    if not len(found) or np.isnan(found["value"].iloc[0]):
        return "–", ""
    row = found.iloc[0]
    text = f"{row['value']:.2f}" + ("" if np.isnan(row["ci_low"]) else f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]")
    flag = "ok" if row["value"] >= ALPHA_GOOD else "tentative" if row["value"] >= ALPHA_TENTATIVE else "low"
    return text, flag


def stability_view(metrics: pd.DataFrame, vote: str, gold: pd.DataFrame | None = None) -> dict:
    """Sentences, one row per task and variable (alpha across repeats and across variants, kappa with the gold
    standard where human codes exist), which code was used downstream, and the sampling settings recorded."""
    rows = []
    for (task, variable), group in metrics.groupby(["task", "variable"], sort=False):
        repeat, repeat_flag = _alpha(group, "repeat")
        variant, variant_flag = _alpha(group, "variant")
        against = "–"
        if gold is not None:
            found = gold[(gold["method"] == task) & (gold["variable"] == variable) & (gold["against"] == "gold")
                         & gold["class"].isna() & (gold["metric"] == "kappa")]
            if len(found) and not np.isnan(found["value"].iloc[0]):
                against = f"κ {found['value'].iloc[0]:.2f}"
        rows.append({"task": METHOD_NAMES.get(task, task), "variable": variable, "n": int(group["n"].max()),
                     "repeat": repeat, "repeat_flag": repeat_flag, "variant": variant, "variant_flag": variant_flag,
                     "gold": against})
    sampling = metrics.drop_duplicates("task")[["task", "model", "temperature", "seed"]]
    return {
        "sentences": sentences(metrics, vote),
        "rows": rows,
        "vote": vote,
        "sampling": [{k: ("not set" if pd.isna(v) else v) for k, v in r.items()} for r in sampling.to_dict("records")],
    }
