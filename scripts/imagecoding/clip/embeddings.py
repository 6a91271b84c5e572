"""CLIP image embeddings: the model loop over batches of images, and the store that keeps them.

Reading (`images.image_batches`), model running (`embed_batches`) and writing (the store) are
separate, so a new image source or storage format does not touch the model code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from ..images import DEFAULT_MAX_PIXELS, image_batches
from ..manifest import decodable_images
from ..store import Committer, PartStore


def embedding_array(matrix: np.ndarray) -> pa.FixedSizeListArray:
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])


def embedding_matrix(column: pa.ChunkedArray | pa.Array, dims: int | None = None) -> np.ndarray:
    """Rows of a fixed-size-list column as an (n, d) float32 matrix; null rows are not allowed."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], pa.list_(pa.float32(), dims or 1))
    width = column.type.list_size
    return np.asarray(column.flatten(), dtype=np.float32).reshape(-1, width)


class EmbeddingStore(PartStore):
    """Embeddings of one model, keyed by image id, kept across runs (see store.PartStore)."""

    def read_embeddings(self, image_ids: list[str]) -> tuple[list[str], np.ndarray]:
        """Embeddings of the requested ids that the store holds, in the requested order."""
        table = self.read(image_ids, columns=["embedding"])
        if not table.num_rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return table.column("image_id").to_pylist(), embedding_matrix(table.column("embedding"))

    def write_embeddings(self, image_ids: list[str], matrix: np.ndarray, metadata: dict | None = None) -> Path:
        return self.write(embedding_table(image_ids, matrix), metadata)


def embedding_table(image_ids: list[str], matrix: np.ndarray) -> pa.Table:
    return pa.table({"image_id": pa.array(image_ids, pa.string()), "embedding": embedding_array(matrix)})


def embed_batches(
    model,
    preprocess,
    items: list[tuple[str, str]],
    device: str = "cpu",
    batch_size: int = 64,
    workers: int = 2,
    min_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[tuple[list[str], np.ndarray, list[tuple[str, str]]]]:
    """Yield (image ids, L2-normalised embeddings, [(image id, error)]) batch by batch."""
    import torch

    batches = image_batches(items, preprocess, batch_size, workers, min_side, max_pixels, pin_memory=device == "cuda")
    with torch.inference_mode():
        for ids, tensors, failures in batches:
            if tensors is None:
                yield [], np.zeros((0, 0), dtype=np.float32), failures
                continue
            features = model.encode_image(tensors.to(device, non_blocking=True))
            features = torch.nn.functional.normalize(features.float(), dim=-1)
            yield ids, features.cpu().numpy(), failures


def embed_into_store(
    batches, store: EmbeddingStore, metadata: dict, flush_every: int, progress=None, flush_seconds: float | None = None
) -> dict[str, str]:
    """Commit the batches of `embed_batches` to the store every `flush_every` images; returns id -> error.

    A killed job loses at most the images since the last commit.
    """
    failures: dict[str, str] = {}
    with Committer(store, flush_every, flush_seconds, metadata) as committer:
        for ids, matrix, failed in batches:
            failures.update(failed)
            if ids:
                committer.add(embedding_table(ids, matrix))
            if progress:
                progress.update(len(ids) + len(failed))
    return failures


def encode_phrases(model, tokenizer, phrases: list[str], device: str = "cpu") -> np.ndarray:
    """L2-normalised text embeddings, one row per phrase."""
    import torch

    with torch.inference_mode():
        features = model.encode_text(tokenizer(phrases).to(device))
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()


def logit_scale(model) -> float:
    return float(model.logit_scale.exp().item())


def shard_of(image_id: str, shards: int) -> int:
    """Stable shard of an image: adding images never moves existing ones to another shard."""
    return int(image_id[:8], 16) % shards


def shard_items(manifest, root: str | Path, shard: int, shards: int) -> list[tuple[str, str]]:
    """(image_id, absolute path) for each distinct decodable image of one shard."""
    return [(image_id, path) for image_id, path in decodable_images(manifest, root) if shard_of(image_id, shards) == shard]


def shard_table(image_ids: list[str], matrix: np.ndarray, failures: dict[str, str]) -> pa.Table:
    """The shard's result file: every image id with its embedding, or a null one and the error."""
    failed_ids = [i for i in failures if i not in set(image_ids)]
    dims = matrix.shape[1] if matrix.size else 1
    embeddings = pa.concat_arrays(
        [embedding_array(matrix.reshape(-1, dims)), pa.nulls(len(failed_ids), pa.list_(pa.float32(), dims))]
    )
    return pa.table(
        {
            "image_id": pa.array(list(image_ids) + failed_ids, pa.string()),
            "embedding": embeddings,
            "status": pa.array(["ok"] * len(image_ids) + ["embed_failed"] * len(failed_ids), pa.string()),
            "error": pa.array([None] * len(image_ids) + [failures[i] for i in failed_ids], pa.string()),
        }
    )
