"""Text side of zero-shot scoring: phrase embeddings for schemes and tags, and the embedded images they meet."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .embeddings import embedding_matrix, encode_phrases
from .model import ModelSpec, load_clip, resolve_device


def embedded_images(shard_paths: list[str]) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """Image ids and embeddings of the shard files, and the images that could not be embedded, with why."""
    shards = pa.concat_tables([pq.read_table(path) for path in shard_paths])
    embedded = shards.filter(pc.equal(shards.column("status"), "ok"))
    failed = shards.filter(pc.not_equal(shards.column("status"), "ok"))
    failures = dict(zip(failed.column("image_id").to_pylist(), failed.column("error").to_pylist()))
    return embedded.column("image_id").to_pylist(), embedding_matrix(embedded.column("embedding")), failures


def phrase_embeddings(weights: dict, phrases: list[str], device: str = "auto", cache_dir: str | None = None) -> np.ndarray:
    """L2-normalised embeddings of the phrases with the model `clip_weights` described."""
    device = resolve_device(device)
    spec = ModelSpec(weights["model"], weights["pretrained"], weights["model_config"])
    model, _, tokenizer = load_clip(spec, device=device, cache_dir=cache_dir)
    return encode_phrases(model, tokenizer, phrases, device)
