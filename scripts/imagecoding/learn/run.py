"""One coded variable learned end to end: its codes on the stored embeddings, the nested cross-validation,
the final fit, a prediction for every embedded image, the learning curve and the card that explains it.

Every image's learned code comes from a model that did not see that image's code: the coded images
get their out-of-fold prediction (status `out_of_fold`), all others the final model's (status `ok`).
Beside it, `<variable>_crossfit` is every image's code by one fold model (the coded images' out-of-fold
one): coded and uncoded images are alike in it, which is what routing calibrates its threshold on.
So the metrics, the consensus and merged.csv all read one column, and none of them is flattered by
the fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .curve import learning_curve
from .probe import (
    C_GRID, SKIPPED, TooFewCodes, check_enough, codes_digest, crossfit_proba, fit, gold_on_embeddings, model_record,
    out_of_fold, predict_proba, prediction_table, summary, with_crossfit,
)

NAMED = 20  # image ids a card names (codes on images that failed to embed); the count is always whole


@dataclass
class LearnSettings:
    min_per_class: int = 5
    folds: int = 5
    phrase_points: bool = True
    curve_sizes: tuple[int, ...] = (10, 20, 50, 100)
    curve_repeats: int = 5
    seed: int = 1
    top_k: int = 3


@dataclass
class Learned:
    """What the learner writes for one variable; `model` is None when the variable was skipped."""

    table: pd.DataFrame
    card: dict
    model: dict | None
    curve: pd.DataFrame


def empty_table(variable: str, categories: list[str], top_k: int) -> pd.DataFrame:
    table = prediction_table(variable, [], np.zeros((0, len(categories))), categories, top_k)
    return table.assign(status=pd.Series([], dtype=str))


def learn_variable(
    variable: str,
    categories: list[str],
    gold: pd.Series,
    vectors: dict[str, np.ndarray],
    over_store: Callable[[Callable], pd.DataFrame],
    settings: LearnSettings,
    embedding: dict,
    phrase_points: tuple[np.ndarray, np.ndarray] | None = None,
    outside: dict[str, int] | None = None,
    groups: pd.Series | None = None,
) -> Learned:
    """gold: image_id -> the coders' value; vectors: the stored embeddings of the coded images;
    over_store(score) runs score(ids, embeddings) over every embedded image, part by part;
    outside: codes (value -> count) already left out of the gold because the value is no longer a category;
    groups: image_id -> duplicate_group, so that the folds keep every copy of a picture together."""
    codes = gold_on_embeddings(gold, categories, vectors)
    card = {
        "variable": variable,
        "categories": list(categories),
        "codes_sha256": codes_digest(gold.rename("value").rename_axis("image_id").reset_index()),
        "gold_codes": int(len(gold)),
        "n_codes": len(codes.image_ids),
        "n_per_class": {c: int((codes.values == c).sum()) for c in categories},
        "not_embedded": {"count": len(codes.not_embedded), "image_ids": codes.not_embedded[:NAMED]},
        "outside_categories": {str(k): int(v) for k, v in {**codes.outside, **(outside or {})}.items()},
        "embedding": embedding,
        "settings": {k: getattr(settings, k) for k in ("min_per_class", "folds", "phrase_points", "seed")},
    }
    try:
        check_enough(codes.values, categories, settings.min_per_class)
    except TooFewCodes as short:
        card.update(status=SKIPPED, reason=str(short))
        return Learned(empty_table(variable, categories, settings.top_k), card, None, pd.DataFrame())

    from threadpoolctl import threadpool_limits

    X, y = codes.embeddings, codes.values.astype(str)
    code_groups = None
    if groups is not None:
        ids = pd.Series(list(codes.image_ids))
        code_groups = ids.map(groups).fillna(ids).to_numpy().astype(str)
    extra = phrase_points if settings.phrase_points else None
    # Hundreds of codes make small matrices: a threaded BLAS spends more on its threads than on them
    # (one thread fits 4x faster on two cores, bench/learned.py).
    with threadpool_limits(1):
        model, chosen = fit(X, y, settings.folds, settings.seed, extra=extra, groups=code_groups)
        held_out, fold_models = out_of_fold(X, y, settings.folds, settings.seed, extra=extra, return_models=True,
                                            groups=code_groups)
        curve = learning_curve(X, y, list(settings.curve_sizes), settings.curve_repeats, chosen["C"], settings.seed)
    record = model_record(model, variable, embedding)
    folds = [model_record(m, variable, embedding) for m in fold_models]
    classes = record["classes"]
    oof = np.asarray(classes, dtype=object)[held_out.argmax(axis=1)]

    def score(ids: list[str], matrix: np.ndarray) -> pd.DataFrame:
        table = prediction_table(variable, ids, predict_proba(record, matrix), classes, settings.top_k)
        return with_crossfit(table, variable, crossfit_proba(folds, ids, matrix, classes), classes)

    table = over_store(score)
    table = table[~table["image_id"].isin(set(codes.image_ids))].assign(status="ok")
    coded = prediction_table(variable, codes.image_ids, held_out, classes, settings.top_k)
    coded = with_crossfit(coded, variable, held_out, classes).assign(status="out_of_fold")
    table = pd.concat([table, coded], ignore_index=True)

    whole = summary(y, oof)
    curve = pd.concat([curve, pd.DataFrame([{"n_codes": len(y), "repeat": 0, "accuracy": whole["accuracy"],
                                             "macro_f1": whole["macro_f1"], "n_test": len(y)}])], ignore_index=True)
    curve.insert(0, "variable", variable)
    card.update(
        status="learned", reason="",
        C=chosen["C"], C_grid=list(C_GRID),
        phrase_points={"offered": 0 if extra is None else int(len(extra[1])), "used": chosen["phrase_points"]},
        cv_accuracy_at_C=chosen["cv_accuracy"],
        out_of_fold=whole,
        predicted_images=int(len(table)),
    )
    return Learned(table, card, record, curve)


def scheme_phrase_points(scheme, phrase_matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scheme's phrase embeddings (in the scheme's phrase order) as training points labelled with their category."""
    labels = np.asarray([scheme.categories[c] for c in scheme.phrase_category], dtype=object).astype(str)
    return np.asarray(phrase_matrix, dtype=np.float64), labels
