"""Each method's code per image and variable, read from the workflow's own result files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..llm.task import CODED
from .variables import CodedVariable, as_code



def method_predictions(
    variables: list[CodedVariable],
    scores: dict[str, str],
    ensemble: str | None = None,
    frames: str | None = None,
    consensus: dict[str, str] | None = None,
    learned: str | None = None,
    multimodal: str | None = None,
    routing: str | None = None,
) -> dict[str, dict[str, pd.Series]]:
    """method -> variable -> Series(image_id -> value); paths: scheme -> clip/<scheme>.parquet and the others.

    `learned` is the learner's folder: on coded images its codes are out of fold, so its metrics are honest.
    `routing` is results/routing: the routed code of every image, the LLM's where it decided.
    """
    out: dict[str, dict[str, pd.Series]] = {}
    names = {v.name for v in variables}

    def put(method: str, variable: str, table: pd.DataFrame, column: str) -> None:
        series = table.drop_duplicates("image_id").set_index("image_id")[column].map(as_code).dropna()
        out.setdefault(method, {})[variable] = series

    for scheme, path in scores.items():
        put("clip", scheme, pd.read_parquet(path), scheme)
    for method, path in (("ensemble", ensemble), ("multimodal", multimodal)):
        if path:
            table = pd.read_parquet(path)
            table = table[table["status"].isin(CODED)]
            for scheme in scores:
                put(method, scheme, table, scheme)
    for scheme in scores if routing else []:
        path = Path(routing) / f"{scheme}.parquet"
        if path.is_file():
            put("routed", scheme, pd.read_parquet(path), "routed")
    for scheme, path in (consensus or {}).items():
        put("consensus", scheme, pd.read_parquet(path), "majority")
    for variable in sorted(names) if learned else []:
        path = Path(learned) / f"{variable}.parquet"
        if path.is_file():
            table = pd.read_parquet(path)
            if len(table):
                put("learned", variable, table, variable)
    if frames:
        table = pd.read_parquet(frames)
        table = table[table["status"].isin(CODED)]
        for column in table.columns:
            if column in names:
                put("frames", column, table, column)
    return out


def rule_predictions(variables: list[CodedVariable], inputs) -> dict[str, dict[str, pd.Series]]:
    """method_predictions from a validation rule's inputs: `scores` (clip/<scheme>.parquet), and `ensemble`,
    `frames`, `learned` (its folder), `multimodal`, `routing` (its folder) and `consensus` (consensus/<scheme>.parquet
    beside agreement.csv), each empty when that step is off."""
    scores = {Path(p).stem: p for p in inputs.scores}
    consensus = {Path(p).stem: p for p in inputs.consensus if p.endswith(".parquet")}
    return method_predictions(variables, scores, next(iter(inputs.ensemble), None), next(iter(inputs.frames), None),
                              consensus, next(iter(inputs.learned), None), next(iter(inputs.multimodal), None),
                              next(iter(inputs.routing), None))
