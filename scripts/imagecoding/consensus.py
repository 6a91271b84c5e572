"""Consensus across methods: per image each method's category and the majority; per pair of methods their agreement."""

from __future__ import annotations

import itertools
from collections import Counter

import pandas as pd

from .llm.task import CODED
from .agreement import cohen_kappa, percent_agreement

METHODS = ("clip", "learned", "ensemble", "multimodal", "frames")


def frames_as_scheme(frames: pd.DataFrame, variable: str, values: dict[str, str], categories: list[str]) -> pd.Series:
    """A codebook variable's codes read as a scheme's categories, by the mapping in consensus.frames.

    Values the mapping leaves out (or maps outside the scheme) count as no category, not as disagreement.
    """
    if variable not in frames.columns:
        raise ValueError(f"consensus.frames: the codebook has no variable '{variable}' (columns are Group_Variable).")
    outside = sorted({c for c in values.values() if c not in categories})
    if outside:
        raise ValueError(f"consensus.frames: {', '.join(outside)} is not a category of the scheme ({', '.join(categories)}).")
    coded = frames[frames["status"].isin(CODED)].drop_duplicates("image_id")
    return coded.set_index("image_id")[variable].map(values)


def consensus_table(image_ids: list[str], methods: dict[str, pd.Series]) -> pd.DataFrame:
    """Per image: each method's category, the majority, how many methods gave a category and how many agree.

    A tie between the most frequent categories has no majority; `split` marks every image where the
    methods that answered do not all agree.
    """
    table = pd.DataFrame({"image_id": image_ids})
    for name, series in methods.items():
        table[name] = table["image_id"].map(series.dropna().to_dict())
    majority, answered, agree = [], [], []
    for row in table[list(methods)].itertuples(index=False):
        given = [c for c in row if isinstance(c, str)]
        ranked = Counter(given).most_common()
        tie = len(ranked) > 1 and ranked[0][1] == ranked[1][1]
        majority.append(ranked[0][0] if ranked and not tie else None)
        answered.append(len(given))
        agree.append(ranked[0][1] if ranked else 0)
    table["majority"] = majority
    table["methods"] = pd.array(answered, dtype="Int64")
    table["agree"] = pd.array(agree, dtype="Int64")
    table["split"] = table["agree"] < table["methods"]
    return table


def pairwise_agreement(scheme: str, table: pd.DataFrame, methods: list[str], categories: list[str]) -> pd.DataFrame:
    """Percent agreement and Cohen's kappa (scikit-learn) for every pair of methods, on the images both coded."""
    rows = []
    for first, second in itertools.combinations(methods, 2):
        both = table[[first, second]].dropna()
        rows.append({"scheme": scheme, "method_a": first, "method_b": second, "n": len(both),
                     "percent": percent_agreement(both[first], both[second]),
                     "kappa": cohen_kappa(both[first], both[second], categories)})
    return pd.DataFrame(rows, columns=["scheme", "method_a", "method_b", "n", "percent", "kappa"])


def consensus_for_merge(table: pd.DataFrame, scheme: str) -> pd.DataFrame:
    """The majority and its support, prefixed consensus_<scheme>; each method's own column is merged by its step."""
    renamed = {
        "majority": f"consensus_{scheme}",
        "methods": f"consensus_{scheme}_methods",
        "agree": f"consensus_{scheme}_agree",
        "split": f"consensus_{scheme}_split",
    }
    return table[["image_id", *renamed]].rename(columns=renamed)
