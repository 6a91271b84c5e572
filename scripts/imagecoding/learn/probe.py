"""A linear probe learned from the study's own codes: logistic regression on the stored image embeddings.

Zero-shot CLIP matches only a few-shot linear probe (Radford et al. 2021): with the human codes of a
validation sample and the embeddings already in the store, a multinomial logistic regression
(scikit-learn, L-BFGS, L2) per coded variable does better, in seconds, with no image read again.
Its quality is measured out of fold only (nested cross-validation: C is chosen inside each training
fold), never on the fit itself. A scheme's phrase embeddings may join the codes as extra training
points, one per phrase labelled with its category (Lin et al. 2023); they are kept only when they
raise the out-of-fold accuracy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# The CLIP paper swept C over 10^-6 to 10^6; L2-normalised embeddings need no wider range.
C_GRID = tuple(float(c) for c in np.logspace(-6, 6, 13))
SKIPPED = "skipped"


@dataclass
class Codes:
    """The gold codes of one variable on embedded images, and what was left out and why."""

    image_ids: list[str]
    values: np.ndarray
    embeddings: np.ndarray
    not_embedded: list[str] = field(default_factory=list)
    outside: dict[str, int] = field(default_factory=dict)  # value no longer in the scheme -> how many codes


class TooFewCodes(ValueError):
    """Some category has fewer codes than learned.min_per_class: the variable is not learned."""


def codes_digest(gold: pd.DataFrame) -> str:
    """A hash of the gold codes (image, value), whatever their order."""
    rows = sorted(zip(gold["image_id"].astype(str), gold["value"].astype(str)))
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def gold_on_embeddings(gold: pd.Series, categories: list[str], vectors: dict[str, np.ndarray]) -> Codes:
    """Gold codes (image_id -> value) kept where the image is embedded and the value is still a category."""
    allowed = set(categories)
    outside = gold[~gold.isin(allowed)].value_counts().to_dict()
    usable = gold[gold.isin(allowed)]
    missing = [image_id for image_id in usable.index if image_id not in vectors]
    usable = usable[[image_id in vectors for image_id in usable.index]]
    matrix = np.stack([vectors[i] for i in usable.index]) if len(usable) else np.zeros((0, 1), np.float32)
    return Codes(list(usable.index), usable.to_numpy(dtype=object), matrix, missing, outside)


def check_enough(values: np.ndarray, categories: list[str], min_per_class: int) -> None:
    counts = pd.Series(values).value_counts()
    short = {c: min_per_class - int(counts.get(c, 0)) for c in categories if counts.get(c, 0) < min_per_class}
    if short:
        needed = ", ".join(f"{c}: {n} more" for c, n in sorted(short.items()))
        raise TooFewCodes(
            f"every category needs at least {min_per_class} codes (learned.min_per_class) to learn from; code {needed}."
        )


def _folds(values: np.ndarray, folds: int) -> int:
    return int(max(2, min(folds, pd.Series(values).value_counts().min())))


def splitter(y: np.ndarray, folds: int, seed: int, groups: np.ndarray | None = None):
    """Stratified folds; with near-duplicate groups, grouped ones: every copy of a picture falls in one fold, so
    no model is judged on a picture it was trained on (its copy)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is not None and len(np.unique(groups)) < len(groups):
        return StratifiedGroupKFold(_folds(y, folds), shuffle=True, random_state=seed)
    return StratifiedKFold(_folds(y, folds), shuffle=True, random_state=seed)


def _search(X: np.ndarray, y: np.ndarray, splits: list, grid) -> tuple[float, float]:
    """(best mean fold accuracy, its C) over the grid, by scikit-learn's warm-started regularisation path."""
    from sklearn.linear_model import LogisticRegressionCV

    search = LogisticRegressionCV(
        Cs=list(grid), cv=splits, scoring="accuracy", max_iter=2000, l1_ratios=(0.0,), refit=False,
        use_legacy_attributes=False,
    ).fit(X, y)
    means = np.asarray(search.scores_).reshape(len(splits), -1, len(grid)).mean(axis=0)[0]
    best = int(np.argmax(means))  # ties go to the smaller C, the stronger regularisation
    return float(means[best]), float(search.Cs_[best])


def fit(X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0, grid=C_GRID, extra=None,
        groups: np.ndarray | None = None):
    """The model fitted on all codes, and what stratified cross-validation on the codes chose for it.

    C is chosen over the grid. When `extra` (the phrase points: X, y) is given, whether they join the
    training data is chosen the same way, on folds whose test parts hold codes only; they are kept
    only when they raise the cross-validated accuracy. Returns (model, {"C", "phrase_points", "cv_accuracy"}).
    `groups` (near-duplicate group per code) keeps every group in one fold.
    """
    from sklearn.linear_model import LogisticRegression

    splits = list(splitter(y, folds, seed, groups).split(X, y, groups))
    score, C = _search(X, y, splits, grid)
    chosen = {"C": C, "phrase_points": False, "cv_accuracy": score}
    if extra is not None and len(extra[1]):
        added = np.arange(len(y), len(y) + len(extra[1]))
        with_points = [(np.concatenate([train, added]), test) for train, test in splits]
        score_p, C_p = _search(np.vstack([X, extra[0]]), np.concatenate([y, extra[1]]), with_points, grid)
        if score_p > score:
            chosen = {"C": C_p, "phrase_points": True, "cv_accuracy": score_p}
    if chosen["phrase_points"]:
        X, y = np.vstack([X, extra[0]]), np.concatenate([y, extra[1]])
    return LogisticRegression(C=chosen["C"], max_iter=2000).fit(X, y), chosen


def out_of_fold(X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0, extra=None,
                return_models: bool = False, groups: np.ndarray | None = None):
    """Each code's class probabilities (columns: the sorted classes) by a model that never saw it.

    C, and the phrase points, are chosen within each training fold (nested cross-validation), so
    the choice never sees the code it is judged on. With return_models, also the fold models, one per fold.
    With `groups`, a code's copies are never in the folds that judge it.
    """
    classes = np.unique(y)
    probabilities = np.zeros((len(y), len(classes)))
    models = []
    for train, test in splitter(y, folds, seed + 1, groups).split(X, y, groups):
        model, _ = fit(X[train], y[train], folds, seed, extra=extra, groups=None if groups is None else groups[train])
        columns = np.searchsorted(classes, model.classes_)
        probabilities[np.ix_(test, columns)] = model.predict_proba(X[test])
        models.append(model)
    return (probabilities, models) if return_models else probabilities


def fold_of(image_id: str, folds: int) -> int:
    """The fold model that predicts an uncoded image in the cross-fit codes: fixed by the image's id."""
    return int(hashlib.sha256(str(image_id).encode()).hexdigest()[:8], 16) % folds


def crossfit_proba(records: list[dict], image_ids: list[str], X: np.ndarray, classes: list[str]) -> np.ndarray:
    """Each uncoded image's class probabilities (columns: `classes`) by one fold model, chosen by its id.

    A coded image's out-of-fold probabilities come from the one fold model that did not see it; an uncoded
    image's come from one such model too, so the two are alike (exchangeable under random sampling of the
    codes), and a threshold calibrated on the coded images holds for the uncoded ones. The final model,
    fitted on every code, is surer of the uncoded images than any fold model is of the coded ones.
    """
    probabilities = np.zeros((len(image_ids), len(classes)))
    chosen = np.array([fold_of(i, len(records)) for i in image_ids], dtype=int)
    for number, record in enumerate(records):
        rows = np.flatnonzero(chosen == number)
        if len(rows):
            columns = np.searchsorted(classes, record["classes"])
            probabilities[np.ix_(rows, columns)] = predict_proba(record, X[rows])
    return probabilities


def summary(y_true, y_pred) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "kappa": float(cohen_kappa_score(y_true, y_pred)),
    }


def model_record(model, variable: str, embedding_key: dict) -> dict:
    """The fitted model as plain JSON (no pickle): classes, coefficients, intercepts and C."""
    return {
        "variable": variable,
        "classes": [str(c) for c in model.classes_],
        "coef": model.coef_.tolist(),
        "intercept": model.intercept_.tolist(),
        "C": float(model.C),
        "embedding": embedding_key,
    }


def predict_proba(record: dict, X: np.ndarray) -> np.ndarray:
    """Class probabilities of a model record (multinomial: a softmax of the linear scores)."""
    coef, intercept = np.asarray(record["coef"]), np.asarray(record["intercept"])
    logits = X @ coef.T + intercept
    if coef.shape[0] == 1:  # two classes: scikit-learn keeps one row, for the second class
        logits = np.hstack([-logits, logits]) / 2
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def prediction_table(variable: str, image_ids: list[str], probabilities: np.ndarray, classes: list[str],
                     top_k: int) -> pd.DataFrame:
    """The columns of results/clip/<scheme>.parquet without phrase labels: category, percent, ranks."""
    top_k = max(1, min(top_k, len(classes)))
    names = np.asarray(classes, dtype=object)
    percent = probabilities * 100.0
    order = np.argsort(-percent, axis=1, kind="stable")[:, :top_k]
    rows = np.arange(len(order))
    table = {"image_id": list(image_ids), variable: names[order[:, 0]] if len(order) else [],
             f"{variable}_prob": percent[rows, order[:, 0]].astype(np.float32) if len(order) else []}
    for rank in range(top_k):
        table[f"{variable}_{rank + 1}"] = names[order[:, rank]] if len(order) else []
        table[f"{variable}_prob_{rank + 1}"] = percent[rows, order[:, rank]].astype(np.float32) if len(order) else []
    return pd.DataFrame(table)


def with_crossfit(table: pd.DataFrame, variable: str, probabilities: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """The cross-fit category and its probability (percent) beside the table's: what routing calibrates on."""
    names = np.asarray(classes, dtype=object)
    best = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, dtype=int)
    return table.assign(**{f"{variable}_crossfit": names[best] if len(best) else [],
                           f"{variable}_crossfit_prob": (probabilities[np.arange(len(best)), best] * 100).astype(np.float32)})


def learned_for_merge(table: pd.DataFrame, variable: str) -> pd.DataFrame:
    """learned_<variable>, its probability and whether it is out of fold (a coded image), one row per image."""
    return pd.DataFrame({
        "image_id": table["image_id"],
        f"learned_{variable}": table[variable],
        f"learned_{variable}_prob": table[f"{variable}_prob"],
        f"learned_{variable}_out_of_fold": table["status"] == "out_of_fold",
    })
