"""The report's frame-coding section: each variable's distribution with samples, unusable answers, cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..llm.task import CODED
from ..tasks.codebook import Variable
from .answers import answers_view
from .settings import ReportSettings


@dataclass
class FramesResult:
    """Frame-coding answers with their codebook, for the report's frames section."""

    table: pd.DataFrame
    variables: list[Variable]  # in codebook order


def frames_view(result: FramesResult, paths: dict[str, str], settings: ReportSettings, rng: np.random.Generator) -> dict:
    table = result.table
    coded = table[table["status"].isin(CODED)]  # rows holding codes (invalid ones: the valid part)
    per_value = max(1, min(6, settings.samples_per_category))
    variables = []
    for variable in result.variables:
        column = variable.column
        counts = coded[column].value_counts(dropna=False)
        if variable.type == "categorical":
            order = list(variable.values) + [v for v in counts.index if v not in variable.values]
        elif variable.type == "boolean":
            order = [True, False] + [v for v in counts.index if v not in (True, False)]
        else:
            order = list(counts.index[:10])  # integers and text: the ten most frequent
        rows = []
        for value in order:
            members = coded[coded[column].isna()] if pd.isna(value) else coded[coded[column] == value]
            n = len(members)
            if variable.type in ("categorical", "boolean") or n:
                ids = list(members["image_id"])
                sample = list(rng.choice(ids, per_value, replace=False)) if len(ids) > per_value else ids
                label = "(invalid or missing)" if pd.isna(value) else str(value)
                rows.append({"value": label, "count": n, "share": 100.0 * n / len(coded) if len(coded) else 0.0,
                             "sample": sample if variable.type in ("categorical", "boolean") else []})
        variables.append({"column": column, "type": variable.type, "description": variable.description, "rows": rows})
    return {"variables": variables, **answers_view(table, paths, settings.max_failures)}
