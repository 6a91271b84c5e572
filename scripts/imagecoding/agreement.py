"""Agreement between two codings of the same images: what consensus and validation both report."""

from __future__ import annotations

import warnings

import numpy as np


def percent_agreement(first, second) -> float:
    """Share of items (aligned, both coded) given the same code, in percent; NaN for none."""
    first, second = np.asarray(first, dtype=object), np.asarray(second, dtype=object)
    return float((first == second).mean() * 100) if len(first) else np.nan


def cohen_kappa(first, second, labels: list[str] | None = None, weights=None) -> float:
    """Cohen's kappa (scikit-learn), each item weighted by `weights` when given; NaN where it is undefined
    (no items, or one category on both sides)."""
    from sklearn.metrics import cohen_kappa_score

    if len(set(first) | set(second)) < 2:
        return np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohen_kappa_score(first, second, labels=labels, sample_weight=weights))
