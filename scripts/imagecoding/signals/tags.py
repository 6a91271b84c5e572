"""CLIP tags: words of an object vocabulary scored against each image's stored embedding, no second pass over images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from ..clip.scoring import softmax
from ..schemes import read_yaml
from .run import failed_row, rows_table

SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("probs", pa.list_(pa.float32())),  # percent, softmax over the whole vocabulary
        ("summary", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
    ]
)
MERGE_COLUMNS = ["summary"]


class VocabularyError(ValueError):
    """A vocabulary file that cannot be used; the message names the file and the fix."""


def load_vocabulary(path: str | Path) -> list[str]:
    words = read_yaml(path, "signals.tags.vocabulary", VocabularyError)
    if not isinstance(words, list) or len(words) < 2 or not all(isinstance(w, str) and w.strip() for w in words):
        raise VocabularyError(
            f"signals.tags.vocabulary: '{path}' must be a YAML list of at least two object words, e.g.\n"
            "  - flag\n  - microphone\n"
        )
    stripped = [w.strip() for w in words]
    duplicates = sorted({w for w in stripped if stripped.count(w) > 1})
    if duplicates:
        raise VocabularyError(f"signals.tags.vocabulary: '{path}' lists {', '.join(duplicates)} more than once.")
    return stripped


def tag_table(
    image_ids: list[str],
    embeddings: np.ndarray,
    word_embeddings: np.ndarray,
    words: list[str],
    logit_scale: float,
    top_k: int,
    min_prob: float,
    failures: dict[str, str] | None = None,
) -> pa.Table:
    """Per image the best `top_k` words at or above `min_prob` percent; images CLIP could not embed are rows too."""
    rows = []
    if len(image_ids):
        probs = softmax(logit_scale * (embeddings @ word_embeddings.T)) * 100.0
        order = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
        for row, image_id in enumerate(image_ids):
            chosen = [i for i in order[row] if probs[row, i] >= min_prob]
            tags = [words[i] for i in chosen]
            rows.append(
                {
                    "image_id": image_id,
                    "tags": tags,
                    "probs": [round(float(probs[row, i]), 2) for i in chosen],
                    "summary": ", ".join(tags),
                    "status": "ok",
                    "error": None,
                }
            )
    for image_id, error in (failures or {}).items():
        rows.append(failed_row(image_id, "embed_failed", error))
    return rows_table(rows, SCHEMA)
