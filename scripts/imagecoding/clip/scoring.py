"""Zero-shot scores: image embeddings against a scheme's phrase embeddings, aggregated per category."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schemes import Scheme

AGGREGATES = ("max", "mean", "sum")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def _category_members(scheme: Scheme) -> list[np.ndarray]:
    owners = np.asarray(scheme.phrase_category)
    return [np.flatnonzero(owners == c) for c in range(len(scheme.categories))]


def category_scores(
    image_embeddings: np.ndarray,
    phrase_embeddings: np.ndarray,
    scheme: Scheme,
    logit_scale: float,
    aggregate: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Per image: a score in percent for every category, and the index of each category's best phrase.

    max:  softmax over all phrases of logit_scale * cosine; a category scores its best phrase
          (so the top category is the category of the best phrase, as in the seeds' method).
    mean: a category's embedding is the re-normalised mean of its phrase embeddings; softmax
          over categories (CLIP's prompt ensembling).
    sum:  softmax over all phrases as for max; a category scores the sum of its phrases.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"clip.aggregate must be one of {', '.join(AGGREGATES)}, not '{aggregate}'.")
    members = _category_members(scheme)
    cosine = image_embeddings @ phrase_embeddings.T
    best_phrase = np.stack([m[np.argmax(cosine[:, m], axis=1)] for m in members], axis=1)
    if aggregate == "mean":
        centroids = l2_normalise(np.stack([phrase_embeddings[m].mean(axis=0) for m in members]))
        return softmax(logit_scale * (image_embeddings @ centroids.T)) * 100.0, best_phrase
    phrase_probs = softmax(logit_scale * cosine) * 100.0
    reduce = np.max if aggregate == "max" else np.sum
    scores = np.stack([reduce(phrase_probs[:, m], axis=1) for m in members], axis=1)
    return scores, best_phrase


def score_table(
    image_ids: list[str],
    image_embeddings: np.ndarray,
    phrase_embeddings: np.ndarray,
    scheme: Scheme,
    logit_scale: float,
    aggregate: str = "max",
    top_k: int = 3,
    chunk: int = 65536,
) -> pd.DataFrame:
    """One row per image with the columns the README lists for clip/<scheme>.parquet: category, best phrase, percent, ranks."""
    name = scheme.name
    top_k = max(1, min(top_k, len(scheme.categories)))
    categories = np.asarray(scheme.categories, dtype=object)
    phrases = np.asarray(scheme.phrases, dtype=object)
    parts = []
    for start in range(0, len(image_ids), chunk):
        block = slice(start, start + chunk)
        scores, best_phrase = category_scores(
            image_embeddings[block], phrase_embeddings, scheme, logit_scale, aggregate
        )
        # stable sort on the negated scores keeps the scheme's order among ties
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
        rows = np.arange(len(order))
        part = {"image_id": list(image_ids[block])}
        part[name] = categories[order[:, 0]]
        part[f"{name}_label"] = phrases[best_phrase[rows, order[:, 0]]]
        part[f"{name}_prob"] = scores[rows, order[:, 0]].astype(np.float32)
        for rank in range(top_k):
            part[f"{name}_{rank + 1}"] = categories[order[:, rank]]
            part[f"{name}_label_{rank + 1}"] = phrases[best_phrase[rows, order[:, rank]]]
            part[f"{name}_prob_{rank + 1}"] = scores[rows, order[:, rank]].astype(np.float32)
        parts.append(pd.DataFrame(part))
    if not parts:
        columns = ["image_id", name, f"{name}_label", f"{name}_prob"]
        for rank in range(1, top_k + 1):
            columns += [f"{name}_{rank}", f"{name}_label_{rank}", f"{name}_prob_{rank}"]
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)
