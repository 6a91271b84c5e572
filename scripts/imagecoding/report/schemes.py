"""The report's section per CLIP scheme: counts, samples, lowest confidence, accounts, right/wrong items."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .settings import ReportSettings


@dataclass
class SchemeResult:
    name: str
    scores: pd.DataFrame
    categories: list[str]
    phrases: dict[str, list[str]] = field(default_factory=dict)


def scheme_view(
    result: SchemeResult,
    merged: pd.DataFrame,
    settings: ReportSettings,
    rng: np.random.Generator,
) -> dict:
    """Everything the template shows for one scheme; image ids still to be turned into thumbnails."""
    name = result.name
    scores = result.scores
    total = len(scores)
    counts = scores[name].value_counts()
    categories = []
    for category in result.categories:
        members = scores[scores[name] == category]
        n = int(counts.get(category, 0))
        sample_ids = list(members["image_id"])
        if len(sample_ids) > settings.samples_per_category:
            sample_ids = list(rng.choice(sample_ids, settings.samples_per_category, replace=False))
        sample = members.set_index("image_id").loc[sample_ids].reset_index() if sample_ids else members.iloc[:0]
        lowest = members.nsmallest(settings.lowest_confidence, f"{name}_prob")
        categories.append(
            {
                "name": category,
                "count": n,
                "share": 100.0 * n / total if total else 0.0,
                "phrases": result.phrases.get(category, []),
                "sample": sample.to_dict("records"),
                "lowest": lowest.to_dict("records"),
                "median_prob": float(members[f"{name}_prob"].median()) if n else None,
            }
        )
    by_account = None
    account = settings.account_column
    if account and account in merged.columns and name in merged.columns:
        posted = merged[merged["has_post"] & merged[name].notna()]
        if len(posted):
            table = pd.crosstab(posted[account], posted[name]).reindex(columns=result.categories, fill_value=0)
            by_account = {
                "categories": result.categories,
                "rows": [
                    {"account": str(idx), "counts": [int(v) for v in row], "total": int(row.sum())}
                    for idx, row in table.iterrows()
                ],
            }
    return {"name": name, "total": total, "categories": categories, "by_account": by_account}


def right_wrong_items(result: SchemeResult, n: int, rng: np.random.Generator) -> list[dict]:
    scores = result.scores
    if len(scores) > n:
        scores = scores.iloc[np.sort(rng.choice(len(scores), n, replace=False))]
    return [
        {
            "image_id": row["image_id"],
            "category": row[result.name],
            "label": row[f"{result.name}_label"],
            "prob": round(float(row[f"{result.name}_prob"]), 2),
        }
        for _, row in scores.iterrows()
    ]
