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

    from .model import image_dtype

    dtype = image_dtype(model)
    batches = image_batches(items, preprocess, batch_size, workers, min_side, max_pixels, pin_memory=device == "cuda")
    with torch.inference_mode():
        for ids, tensors, failures in batches:
            if tensors is None:
                yield [], np.zeros((0, 0), dtype=np.float32), failures
                continue
            features = model.encode_image(tensors.to(device, dtype=dtype, non_blocking=True))
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


def shard_count(images: int, shard_size: int) -> int:
    """Embedding jobs for `images` paths at about `shard_size` each: the next power of two.

    Shards are `image_id mod count`; doubling the count splits every shard in two, so an image
    never moves to a shard that did not come from its old one.
    """
    needed = max(1, -(-images // shard_size))
    return 1 << (needed - 1).bit_length()


def shard_of(image_id: str, shards: int) -> int:
    """Stable shard of an image: adding images never moves existing ones to another shard."""
    return int(image_id[:8], 16) % shards


def shard_items(manifest, root: str | Path, shard: int, shards: int) -> list[tuple[str, str]]:
    """(image_id, absolute path) for each distinct decodable image of one shard."""
    return [(image_id, path) for image_id, path in decodable_images(manifest, root) if shard_of(image_id, shards) == shard]


def index_table(image_ids: list[str], failures: dict[str, str]) -> pa.Table:
    """A shard's result: every image id, `ok` or `embed_failed` with the error; the embeddings stay in the store."""
    return pa.table(
        {
            "image_id": pa.array(list(image_ids), pa.string()),
            "status": pa.array(["embed_failed" if i in failures else "ok" for i in image_ids], pa.string()),
            "error": pa.array([failures.get(i) for i in image_ids], pa.string()),
        }
    )


def loader_settings(device: str, threads: int, batch_size: int | None, workers: int | None) -> tuple[int, int]:
    """Batch size and decoding workers for a device when the config leaves them to us (null).

    On a CPU the model and the decoding share the cores: batches of 32, decoded one batch ahead by a
    thread of the same process, measured fastest (docs/benchmarks.md). A GPU wants large batches and
    every other core decoding in worker processes.
    """
    if batch_size is None:
        batch_size = 32 if device == "cpu" else 64 if device == "mps" else 256
    if workers is None:
        workers = 0 if device == "cpu" else max(1, threads - 1)
    return batch_size, workers
