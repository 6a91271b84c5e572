"""The text side of zero-shot scoring: phrase embeddings kept per (model, weights, phrase), and the stored
image embeddings they meet, read part by part.

A scheme edit encodes only its new phrases, with the text tower alone; phrases already seen by this
model (in any scheme, or as tags) cost nothing, and the store's embeddings never sit in memory at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..outputs import write_json
from ..store import PartStore
from .embeddings import EmbeddingStore, embedding_array, embedding_matrix


class PhraseCache:
    """Phrase embeddings of one model and its weights, and the model's logit scale."""

    def __init__(self, store_dir: str | Path, description: dict):
        self.store = PartStore(Path(store_dir) / description["text_key"], key="phrase")
        self.scale_file = self.store.folder / "text.json"

    def get(self, phrases: list[str]) -> dict[str, np.ndarray]:
        table = self.store.read(phrases)
        if not table.num_rows:
            return {}
        return dict(zip(table.column("phrase").to_pylist(), embedding_matrix(table.column("embedding"))))

    def put(self, phrases: list[str], matrix: np.ndarray, logit_scale: float) -> None:
        self.store.write(pa.table({"phrase": pa.array(phrases, pa.string()), "embedding": embedding_array(matrix)}))
        if not self.scale_file.exists():
            write_json(self.scale_file, {"logit_scale": logit_scale})

    def logit_scale(self) -> float | None:
        return json.loads(self.scale_file.read_text())["logit_scale"] if self.scale_file.exists() else None


def warm_phrase_cache(description: dict, store_dir: str | Path, phrases: list[str], model, tokenizer, device: str) -> int:
    """Encode the phrases the cache lacks with a model that is loaded anyway; returns how many.

    The embedding job calls this with its whole model, so a first run's scoring needs no model at
    all: one model build per run. The cache is keyed by model, weights and phrase, so which step
    fills it does not matter, and a scheme edited later only adds its new phrases.
    """
    from .embeddings import encode_phrases

    cache = PhraseCache(store_dir, description)
    missing = list(dict.fromkeys(p for p in phrases if p not in cache.get(phrases)))
    if missing:
        cache.put(missing, encode_phrases(model, tokenizer, missing, device), float(model.logit_scale.detach().exp()))
    return len(missing)


def phrase_embeddings(
    description: dict, phrases: list[str], store_dir: str | Path, device: str = "auto", cache_dir: str | None = None
) -> tuple[np.ndarray, float, int]:
    """(L2-normalised embeddings in the phrases' order, the logit scale, how many phrases were encoded now)."""
    cache = PhraseCache(store_dir, description)
    found = cache.get(phrases)
    missing = list(dict.fromkeys(p for p in phrases if p not in found))
    scale = cache.logit_scale()
    if missing or scale is None:
        from .model import load_text_tower, resolve_device

        tower = load_text_tower(description, resolve_device(device), cache_dir)
        if missing:
            encoded = tower.encode(missing)
            found.update(zip(missing, encoded))
            cache.put(missing, encoded, tower.logit_scale)
        scale = tower.logit_scale
    return np.stack([found[p] for p in phrases]), scale, len(missing)


def read_index(index_paths: list[str]) -> tuple[list[str], dict[str, str]]:
    """From the embedding jobs' index files: the embedded image ids, and the ones that failed with why."""
    index = pa.concat_tables([pq.read_table(path) for path in index_paths])
    ok = index.filter(pc.equal(index.column("status"), "ok"))
    failed = index.filter(pc.not_equal(index.column("status"), "ok"))
    return ok.column("image_id").to_pylist(), dict(zip(failed.column("image_id").to_pylist(), failed.column("error").to_pylist()))


def stored_embeddings(store: EmbeddingStore, image_ids: list[str]) -> Iterator[tuple[list[str], np.ndarray]]:
    """(ids, embeddings) of the wanted images, one store part at a time."""
    for table in store.iter_parts(image_ids, columns=["embedding"]):
        yield table.column("image_id").to_pylist(), embedding_matrix(table.column("embedding"))


class EmbeddingsMissing(RuntimeError):
    """The index says images are embedded, but the store lacks them (it was moved or deleted)."""


def scores_from_store(description: dict, store_dir: str | Path, image_ids: list[str], score) -> "pd.DataFrame":
    """`score(ids, embeddings)` over the stored embeddings of the images, part by part, as one table."""
    import pandas as pd

    store = EmbeddingStore(Path(store_dir) / description["store_key"])
    tables, seen = [], 0
    for ids, matrix in stored_embeddings(store, image_ids):
        tables.append(score(ids, matrix))
        seen += len(ids)
    if seen < len(set(image_ids)):
        raise EmbeddingsMissing(
            f"{len(set(image_ids)) - seen} embedded images are not in the store {store.folder} (clip.store_dir): "
            "was it moved or deleted? Re-embed them with `snakemake --forcerun clip_embed`."
        )
    if not tables:
        return score([], np.zeros((0, 1), dtype=np.float32))
    return pd.concat(tables, ignore_index=True)
