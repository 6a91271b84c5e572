"""The cost/accuracy curve of routing and the threshold it certifies.

An image keeps the cheap method's category when the cheap methods agree on it and its confidence is above
the threshold t; every other image goes to the LLM. On the human-coded images (the LLM answers all of
them first) each t gives a routed result whose accuracy against the gold standard is measured, weighted
by the validation design, with Clopper-Pearson bounds (scipy's beta quantiles).

The threshold is chosen by fixed-sequence testing (Learn then Test, Angelopoulos et al. 2021): walk t
down from 1 (the LLM on every image) and keep lowering it while the one-sided (1 - delta) lower bound
of the routed accuracy stays at or above the target; the first t that fails ends the walk. Because the
order is fixed in advance, no correction for the many thresholds looked at is needed: with probability
at least 1 - delta the routed accuracy at the chosen t is at least the target, when the coded images are
a random sample of the routed images (see docs/routing.md for the weighted designs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cheap import Cheap

GRID = np.round(np.linspace(0, 1, 101), 2)
CURVE_COLUMNS = [
    "scheme", "threshold", "share_sent", "images_sent", "requests", "dollars", "n_coded", "n_effective", "accuracy",
    "accuracy_bound", "ci_low", "ci_high", "kept_coded", "kept_accuracy", "certified", "chosen",
]


def effective_n(weights: np.ndarray) -> float:
    """Kish's effective sample size of weighted observations: n itself when every weight is equal."""
    weights = np.asarray(weights, dtype=float)
    return float(weights.sum() ** 2 / (weights**2).sum()) if len(weights) and weights.sum() > 0 else 0.0


def lower_bound(share, n, delta: float):
    """One-sided Clopper-Pearson lower bound at level 1 - delta of a proportion seen as `share` of `n` trials
    (scalars or arrays; a non-integer n is an effective sample size)."""
    from scipy.stats import beta

    share, n = np.broadcast_arrays(np.asarray(share, dtype=float), np.asarray(n, dtype=float))
    successes = share * n
    with np.errstate(invalid="ignore"):
        low = np.where(successes > 0, beta.ppf(delta, np.maximum(successes, 1e-12), n - successes + 1), 0.0)
    low = np.where(n > 0, low, 0.0)
    return float(low) if low.ndim == 0 else low


def interval(share, n, level: float = 0.95):
    """Two-sided Clopper-Pearson interval of a proportion seen as `share` of `n` trials (scalars or arrays)."""
    from scipy.stats import beta

    share, n = np.broadcast_arrays(np.asarray(share, dtype=float), np.asarray(n, dtype=float))
    successes, alpha = share * n, 1 - level
    with np.errstate(invalid="ignore"):
        low = np.where(successes > 0, beta.ppf(alpha / 2, np.maximum(successes, 1e-12), n - successes + 1), 0.0)
        high = np.where(successes < n, beta.ppf(1 - alpha / 2, successes + 1, np.maximum(n - successes, 1e-12)), 1.0)
    low, high = np.where(n > 0, low, 0.0), np.where(n > 0, high, 1.0)
    return (float(low), float(high)) if low.ndim == 0 else (low, high)


def weighted_share(correct: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """The weighted share of true values and the effective number of observations behind it."""
    if not len(correct):
        return float("nan"), 0.0
    return float(np.average(correct, weights=weights)), effective_n(weights)


def kept(cheap: Cheap, threshold: float) -> pd.Series:
    """image_id -> whether the cheap category stands at this threshold (agreeing methods, confidence above it)."""
    return cheap.agree & (cheap.confidence > threshold)


def cost_curve(scheme: str, cheap: Cheap, llm: pd.Series, gold: pd.Series, weights: pd.Series, always: set,
               cost_per_answer: float, target: float, delta: float) -> pd.DataFrame:
    """One row per threshold of GRID: what routing at it sends and costs over every routable image, and its
    accuracy on the coded images with the one-sided bound the choice uses and a two-sided 95% interval.

    cheap: over the routable images; llm: image_id -> the LLM's category (the coded images at least);
    gold: image_id -> the gold code; weights: image_id -> inverse inclusion probability; always: images
    asked whatever the threshold (the coded ones).
    """
    images = cheap.category.index
    confidence = cheap.confidence.reindex(images).to_numpy(dtype=float)
    agree = cheap.agree.reindex(images).fillna(False).to_numpy(dtype=bool)
    asked_anyway = images.isin(list(always))
    coded = gold.dropna().index.intersection(images)
    where = images.get_indexer(coded)
    truth = gold.reindex(coded).astype(str).to_numpy()
    w = weights.reindex(coded).fillna(1.0).to_numpy(dtype=float)
    cheap_right = cheap.category.reindex(coded).to_numpy() == truth
    answers = llm.reindex(coded)
    llm_answered = answers.notna().to_numpy()
    llm_right = answers.to_numpy() == truth
    rows = []
    for t in GRID:
        stands = agree & (confidence > t)
        held = stands[where]
        # the cheap category where it stands, and where the LLM gave none; the LLM's elsewhere
        right = np.where(held | ~llm_answered, cheap_right, llm_right)
        accuracy, n = weighted_share(right, w)
        sent = int((~stands).sum())
        requests = int((~stands | asked_anyway).sum())
        rows.append({
            "scheme": scheme, "threshold": float(t), "share_sent": sent / len(images) if len(images) else 0.0,
            "images_sent": sent, "requests": requests, "dollars": requests * cost_per_answer,
            "n_coded": len(coded), "accuracy": accuracy, "n_effective": n, "kept_coded": int(held.sum()),
            "kept_accuracy": float(np.average(cheap_right[held], weights=w[held])) if held.any() else float("nan"),
            "chosen": False,
        })
    curve = pd.DataFrame(rows)
    measured = curve["n_effective"] > 0
    accuracy, n = curve["accuracy"].fillna(0).to_numpy(), curve["n_effective"].to_numpy()
    curve["accuracy_bound"] = np.where(measured, lower_bound(accuracy, n, delta), np.nan)
    low, high = interval(accuracy, n)
    curve["ci_low"], curve["ci_high"] = np.where(measured, low, np.nan), np.where(measured, high, np.nan)
    curve["certified"] = measured & (curve["accuracy_bound"] >= target)
    return curve[CURVE_COLUMNS]


def choose_threshold(curve: pd.DataFrame) -> tuple[float, bool]:
    """Fixed-sequence testing down from t = 1: the lowest threshold before the first one whose bound misses the
    target. Returns (threshold, certified); when even t = 1 misses it, (1.0, False): every image goes to the LLM."""
    chosen, certified = 1.0, False
    for row in curve.sort_values("threshold", ascending=False).itertuples():
        if not row.certified:
            break
        chosen, certified = float(row.threshold), True
    return chosen, certified


def cheap_only_accuracy(cheap: Cheap, gold: pd.Series, weights: pd.Series) -> tuple[float, float]:
    """The cheap method's weighted accuracy on the coded images, with no LLM at all, and its effective n."""
    coded = gold.dropna().index.intersection(cheap.category.index)
    right = cheap.category.reindex(coded).to_numpy() == gold.reindex(coded).astype(str).to_numpy()
    return weighted_share(right, weights.reindex(coded).fillna(1.0).to_numpy(dtype=float))
