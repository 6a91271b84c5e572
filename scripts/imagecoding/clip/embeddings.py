"""CLIP image embeddings: a content-addressed store, a DataLoader over image files, and the model loop.

Reading (the dataset), model running (`embed_batches`) and writing (the store) are separate, so
a new image source or storage format does not touch the model code.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..images import DEFAULT_MAX_PIXELS, ImageProblem, load_rgb


def embedding_array(matrix: np.ndarray) -> pa.FixedSizeListArray:
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])


def embedding_matrix(column: pa.ChunkedArray | pa.Array, dims: int | None = None) -> np.ndarray:
    """Rows of a fixed-size-list column as an (n, d) float32 matrix; null rows are not allowed."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], pa.list_(pa.float32(), dims or 1))
    width = column.type.list_size
    return np.asarray(column.flatten(), dtype=np.float32).reshape(-1, width)


class EmbeddingStore:
    """Embeddings of one model, keyed by image id, kept across runs in append-only parquet parts.

    Each writer adds its own uniquely named part (written to a temporary name, then renamed),
    so parallel Snakemake jobs never collide and a killed job loses at most one unflushed batch.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet"))

    def known_ids(self) -> set[str]:
        known: set[str] = set()
        for part in self.parts():
            known.update(pq.read_table(part, columns=["image_id"]).column("image_id").to_pylist())
        return known

    def read(self, image_ids: list[str]) -> tuple[list[str], np.ndarray]:
        """Embeddings of the requested ids that the store holds, in the requested order."""
        import pyarrow.compute as pc

        wanted = pa.array(sorted(set(image_ids)), pa.string())
        found: dict[str, np.ndarray] = {}
        for part in self.parts():
            table = pq.read_table(part)
            table = table.filter(pc.is_in(table.column("image_id"), value_set=wanted))
            if not table.num_rows:
                continue
            matrix = embedding_matrix(table.column("embedding"))
            for row, image_id in enumerate(table.column("image_id").to_pylist()):
                found.setdefault(image_id, matrix[row])
        ordered = [i for i in image_ids if i in found]
        if not ordered:
            return [], np.zeros((0, 0), dtype=np.float32)
        return ordered, np.stack([found[i] for i in ordered])

    def write(self, image_ids: list[str], matrix: np.ndarray, metadata: dict | None = None) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        if metadata and not (self.folder / "store.json").exists():
            _atomic_write_text(self.folder / "store.json", json.dumps(metadata, indent=2))
        table = pa.table({"image_id": pa.array(image_ids, pa.string()), "embedding": embedding_array(matrix)})
        name = f"part-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
        final = self.folder / name
        temporary = self.folder / f".{name}.tmp"
        pq.write_table(table, temporary)
        os.replace(temporary, final)
        return final


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class ImageFiles:
    """A map-style dataset of (image_id, path): decoding and preprocessing run in DataLoader workers."""

    def __init__(self, items: list[tuple[str, str]], preprocess, min_side: int | None, max_pixels: int):
        self.items = items
        self.preprocess = preprocess
        self.min_side = min_side
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        _, path = self.items[index]
        try:
            return index, self.preprocess(load_rgb(path, self.min_side, self.max_pixels)), None
        except ImageProblem as problem:
            return index, None, f"{problem.status}: {problem.detail}"
        except Exception as exc:  # a preprocessing failure is one image's problem, not the run's
            return index, None, f"corrupt: {type(exc).__name__}: {exc}"


def _collate(batch):
    import torch

    good = [(i, t) for i, t, _ in batch if t is not None]
    failed = [(i, e) for i, t, e in batch if t is None]
    indices = [i for i, _ in good]
    tensors = torch.stack([t for _, t in good]) if good else None
    return indices, tensors, failed


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
    from torch.utils.data import DataLoader

    loader = DataLoader(
        ImageFiles(items, preprocess, min_side, max_pixels),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device == "cuda",
        # workers > 0 keeps batches coming while the model runs
        prefetch_factor=4 if workers > 0 else None,
    )
    with torch.inference_mode():
        for indices, tensors, failed in loader:
            failures = [(items[i][0], error) for i, error in failed]
            if tensors is None:
                yield [], np.zeros((0, 0), dtype=np.float32), failures
                continue
            features = model.encode_image(tensors.to(device, non_blocking=True))
            features = torch.nn.functional.normalize(features.float(), dim=-1)
            yield [items[i][0] for i in indices], features.cpu().numpy(), failures


def embed_into_store(batches, store: EmbeddingStore, metadata: dict, flush_every: int, progress=None) -> dict[str, str]:
    """Commit the batches of `embed_batches` to the store every `flush_every` images; returns id -> error.

    A killed job loses at most the images since the last flush.
    """
    failures: dict[str, str] = {}
    pending_ids: list[str] = []
    pending: list[np.ndarray] = []
    for ids, matrix, failed in batches:
        failures.update(failed)
        if ids:
            pending_ids.extend(ids)
            pending.append(matrix)
        if len(pending_ids) >= flush_every:
            store.write(pending_ids, np.concatenate(pending), metadata)
            pending_ids, pending = [], []
        if progress:
            progress.update(len(ids) + len(failed))
    if pending_ids:
        store.write(pending_ids, np.concatenate(pending), metadata)
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
    from ..posts import absolute_path

    usable = manifest[manifest["status"] == "ok"].drop_duplicates("image_id")
    return [
        (image_id, str(absolute_path(path, root)))
        for image_id, path in zip(usable["image_id"], usable["path"])
        if shard_of(image_id, shards) == shard
    ]


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
