"""The cheap side of routing: per scheme the category a cheaper method gives each image, how sure it is, and
whether the cheap methods agree on it."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

CHEAP_MODES = ("auto", "learned", "clip", "agreement")


@dataclass
class Cheap:
    """What decides an image when the LLM is not asked: `method` names it in routed_<scheme>_by."""

    method: str
    category: pd.Series  # image_id -> category
    confidence: pd.Series  # image_id -> the deciding method's probability of its category, 0 to 1
    agree: pd.Series  # image_id -> whether every cheap method consulted gives that category
    note: str = ""


def method_answers(table: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """A clip/<scheme>.parquet or learned/<scheme>.parquet table's category column and its probability (percent to 0-1)."""
    table = table.drop_duplicates("image_id").dropna(subset=[column]).set_index("image_id")
    return table[column].astype(str), (table[f"{column}_prob"].astype(float) / 100).clip(0, 1)


def cheap_answers(scheme: str, mode: str, clip: pd.DataFrame, learned: pd.DataFrame | None = None) -> Cheap:
    """The cheap method of route.cheap for one scheme.

    auto: the learned classifier where it learned the scheme, else zero-shot CLIP; learned asks for the learned
    classifier and falls back to CLIP (with a note) where there is none; agreement decides by the learned
    classifier (or CLIP) and sends every image the two disagree on. `learned` is learned/<scheme>.parquet, whose
    cross-fit columns are read.
    """
    if mode not in CHEAP_MODES:
        raise ValueError(f"route.cheap: '{mode}' is not one of {', '.join(CHEAP_MODES)}.")
    methods = {"clip": method_answers(clip, scheme)}
    if learned is not None and len(learned):
        # The cross-fit codes: on coded and uncoded images alike by a model that did not see the image's code,
        # so the threshold the coded images certify holds for the rest (learn/probe.py crossfit_proba).
        methods["learned"] = method_answers(learned, f"{scheme}_crossfit")
    note = ""
    if mode == "clip":
        chosen = ["clip"]
    elif "learned" not in methods:
        chosen = ["clip"]
        if mode != "auto":
            note = (f"route.cheap: {mode} asks for the learned classifier, but {scheme} was not learned (too few codes, "
                    "or learned.enabled is false); zero-shot CLIP decides instead")
    else:
        chosen = ["learned", "clip"] if mode == "agreement" else ["learned"]
    category, confidence = methods[chosen[0]]
    agree = pd.Series(True, index=category.index)
    for other in chosen[1:]:
        codes = methods[other][0].reindex(category.index)
        agree &= codes.eq(category).fillna(False).astype(bool)
    name = " and ".join(chosen) if len(chosen) > 1 else chosen[0]
    return Cheap(name, category, confidence, agree, note)
