"""How far an LLM task agrees with itself: per image the majority across its repeats and variants, per variable
Krippendorff's alpha and percent agreement with the repeats (or the prompt variants) as coders.

Alpha is the human coders' (validation/metrics.py nominal_alpha, the krippendorff package); its interval is a
seeded bootstrap over images. Percent agreement is the share of images on which every coder gave one answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..llm.task import CODED
from ..validation.metrics import METHOD_NAMES, nominal_alpha, value_numbers
from ..validation.variables import CodedVariable

METRIC_COLUMNS = ["task", "variable", "kind", "metric", "value", "ci_low", "ci_high", "n", "coders", "model",
                  "temperature", "seed"]
ALPHA_GOOD, ALPHA_TENTATIVE = 0.8, 0.667  # Krippendorff's thresholds: conclusions, tentative conclusions


def as_code(value) -> str | None:
    """A coded value as the human codes spell it (booleans lower-case), None where there is none."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


def coder_tables(answers: pd.DataFrame, variables: list[CodedVariable]) -> dict[str, pd.DataFrame]:
    """Per variable a coders x images table of codes; answers that are not codes (errors, refusals) are missing."""
    coded = answers[answers["status"].isin(CODED)]
    order = list(dict.fromkeys(answers["coder"]))
    images = sorted(answers["image_id"].unique())
    tables = {}
    for variable in variables:
        table = coded.pivot_table(index="coder", columns="image_id", values=variable.name,
                                  aggfunc="first", dropna=False) if len(coded) else pd.DataFrame()
        tables[variable.name] = table.map(as_code).reindex(index=order, columns=images)
    return tables


def majority(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per image and variable the answer most coders gave (a tie goes to the first coder's answer among the
    tied, the task's own), the share of answers that gave it, how many answered, and the split ("A 2, B 1")."""
    columns = {}
    for name, table in tables.items():
        chosen, share, answered, split = [], [], [], []
        for image_id in table.columns:
            given = table[image_id].dropna()
            counts = given.value_counts()
            if counts.empty:
                chosen.append(None), share.append(np.nan), answered.append(0), split.append("")
                continue
            tied = set(counts.index[counts == counts.max()])
            winner = next(value for value in given if value in tied)
            chosen.append(winner)
            share.append(counts.max() / len(given))
            answered.append(len(given))
            split.append(", ".join(f"{value} {count}" for value, count in counts.items()))
        columns[name] = chosen
        columns[f"{name}_agreement"] = share
        columns[f"{name}_answers"] = answered
        columns[f"{name}_split"] = split
    images = next(iter(tables.values())).columns if tables else []
    return pd.DataFrame({"image_id": list(images), **columns})


def per_image(answers: pd.DataFrame, variables: list[CodedVariable]) -> pd.DataFrame:
    """results/stability/<task>.parquet: the majority and its split, then every coder's answer
    (`<variable>__<coder>`), one row per image asked again."""
    tables = coder_tables(answers, variables)
    found = majority(tables).set_index("image_id")
    for name, table in tables.items():
        for coder in table.index:
            found[f"{name}__{coder}"] = table.loc[coder].reindex(found.index)
    return found.reset_index()


def _all_agree(numbers: np.ndarray) -> np.ndarray:
    """Per image (a column of value numbers, NaN where not coded): whether every coder gave one answer."""
    coded = np.isfinite(numbers)
    low = np.where(coded, numbers, np.inf).min(axis=0)
    high = np.where(coded, numbers, -np.inf).max(axis=0)
    return low == high


def agreement_rows(task: str, variable: CodedVariable, kind: str, table: pd.DataFrame, bootstrap: int = 1000,
                   seed: int = 1) -> list[dict]:
    """Alpha and percent agreement of one variable among one kind of coders, with bootstrap intervals over images."""
    coded_twice = table.loc[:, table.notna().sum(axis=0) >= 2]
    n = coded_twice.shape[1]
    if len(table) < 2 or not n:
        return []
    values = list(variable.values)
    numbers = value_numbers(coded_twice, values)
    point = {"krippendorff_alpha": nominal_alpha(numbers, values),
             "percent_agreement": float(_all_agree(numbers).mean() * 100)}
    draws = {name: [] for name in point}
    rng = np.random.default_rng(seed)
    for _ in range(bootstrap):
        drawn = numbers[:, rng.integers(0, n, n)]  # an image drawn twice is two units
        draws["krippendorff_alpha"].append(nominal_alpha(drawn, values))
        draws["percent_agreement"].append(float(_all_agree(drawn).mean() * 100))
    rows = []
    for metric, value in point.items():
        finite = [d for d in draws[metric] if np.isfinite(d)]
        low, high = np.percentile(finite, [2.5, 97.5]) if finite else (np.nan, np.nan)
        rows.append({"task": task, "variable": variable.name, "kind": kind, "metric": metric, "value": value,
                     "ci_low": float(low), "ci_high": float(high), "n": n, "coders": len(table)})
    return rows


def stability_metrics(task: str, answers: pd.DataFrame, variables: list[CodedVariable], sampling: dict,
                      bootstrap: int = 1000, seed: int = 1) -> pd.DataFrame:
    """Tidy rows per variable and kind: the repeats as coders, and the task's own prompt with its variants as
    coders. `sampling` (model, temperature, seed of the requests) is recorded on every row."""
    tables = coder_tables(answers, variables)
    kinds = dict(zip(answers["coder"], answers["kind"]))
    rows = []
    for variable in variables:
        table = tables[variable.name]
        repeats = [c for c in table.index if kinds[c] == "repeat"]
        variants = ["repeat_1"] + [c for c in table.index if kinds[c] == "variant"]
        rows += agreement_rows(task, variable, "repeat", table.loc[repeats], bootstrap, seed)
        if len(variants) > 1:
            rows += agreement_rows(task, variable, "variant", table.loc[variants], bootstrap, seed)
    found = pd.DataFrame(rows, columns=METRIC_COLUMNS[:-3])
    for key in ("model", "temperature", "seed"):
        found[key] = sampling.get(key)
    return found[METRIC_COLUMNS]


def apply_vote(table: pd.DataFrame, voted: pd.DataFrame, variables: list[CodedVariable]) -> pd.DataFrame:
    """The task's table with the majority as its code on every image asked again (stability.vote: majority)."""
    table = table.copy()
    majorities = voted.set_index("image_id")
    for variable in variables:
        chosen = table["image_id"].map(majorities[variable.name])
        where = chosen.notna()
        if not where.any():
            continue
        column = table[variable.name]
        if str(column.dtype) in ("boolean", "bool"):
            chosen = chosen.map({"true": True, "false": False})
        table[variable.name] = column.astype(object).where(~where, chosen).astype(column.dtype)
    return table


def sentences(metrics: pd.DataFrame, vote: str = "first") -> list[str]:
    """One sentence per task and variable, as a paper would report it, with Krippendorff's thresholds."""
    out = []
    for (task, variable), group in metrics.groupby(["task", "variable"], sort=False):
        values = group.set_index(["kind", "metric"])
        parts = []
        for kind in ("repeat", "variant"):
            if (kind, "krippendorff_alpha") not in values.index:
                continue
            alpha, share = values.loc[(kind, "krippendorff_alpha")], values.loc[(kind, "percent_agreement")]
            coders = int(alpha["coders"]) - (1 if kind == "variant" else 0)
            what = (f"{coders} repeats" if kind == "repeat"
                    else f"its prompt and {coders} prompt variant{'s' if coders > 1 else ''}")
            if np.isnan(alpha["value"]):
                figure = "α undefined (one answer throughout)"
            else:
                interval = "" if np.isnan(alpha["ci_low"]) else f" [{alpha['ci_low']:.2f}, {alpha['ci_high']:.2f}]"
                flag = (" (below 0.667: not even tentative conclusions)" if alpha["value"] < ALPHA_TENTATIVE
                        else " (below 0.8: tentative conclusions only)" if alpha["value"] < ALPHA_GOOD else "")
                figure = f"α = {alpha['value']:.2f}{interval}{flag}"
            parts.append(f"across {what} on {share['value']:.0f}% of {int(share['n'])} images, {figure}")
        if parts:
            name = METHOD_NAMES.get(task, task)
            out.append(f"{name} {variable} agrees with itself " + "; ".join(parts) + ".")
    return out
