"""The learning curve: how good the learned classifier is with fewer codes, so a study sees whether coding more pays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .probe import summary


def balanced_subsample(y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `size` codes, as even across categories as the codes allow."""
    by_class = {c: rng.permutation(np.flatnonzero(y == c)) for c in sorted(set(y))}
    chosen, round_ = [], 0
    while len(chosen) < size:
        added = False
        for members in by_class.values():
            if round_ < len(members) and len(chosen) < size:
                chosen.append(members[round_])
                added = True
        if not added:
            break
        round_ += 1
    return np.asarray(chosen)


def learning_curve(X, y, sizes, repeats: int, C: float, seed: int = 0) -> pd.DataFrame:
    """Accuracy and macro-F1 of a model fitted on n class-balanced codes, tested on the codes it did not see.

    C is the one chosen on all codes (too few codes at small n to choose it again): a little optimistic.
    """
    from sklearn.linear_model import LogisticRegression

    rows = []
    classes = len(set(y))
    for size in sizes:
        if size >= len(y) or size < classes:
            continue
        for repeat in range(repeats):
            rng = np.random.default_rng([seed, size, repeat])
            train = balanced_subsample(y, size, rng)
            if len(set(y[train])) < 2:
                continue
            test = np.setdiff1d(np.arange(len(y)), train)
            model = LogisticRegression(C=C, max_iter=2000).fit(X[train], y[train])
            scores = summary(y[test], model.predict(X[test]))
            rows.append({"n_codes": int(size), "repeat": repeat, "accuracy": scores["accuracy"],
                         "macro_f1": scores["macro_f1"], "n_test": int(len(test))})
    return pd.DataFrame(rows, columns=["n_codes", "repeat", "accuracy", "macro_f1", "n_test"])
