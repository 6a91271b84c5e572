"""Per-image results kept across runs: append-only parquet parts keyed by image_id, each committed atomically.

Embeddings and every signal (OCR, objects, captions) keep their results in a store named by the
settings that produced them, so adding 10 images to 100,000 computes 10, and a killed job keeps every
part it committed.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class PartStore:
    """Rows keyed by image_id in uniquely named parts (written to a temporary name, then renamed).

    Parallel jobs never collide, and readers never see half a part. When an id is stored twice
    (two runs raced), the first part found wins; both hold the same result.
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

    def read(self, image_ids: list[str], columns: list[str] | None = None) -> pa.Table:
        """Stored rows of the requested ids, one per id, in the requested order; ids not stored are left out."""
        wanted = pa.array(sorted(set(image_ids)), pa.string())
        pieces, seen = [], set()
        for part in self.parts():
            table = pq.read_table(part, columns=columns and ["image_id", *[c for c in columns if c != "image_id"]])
            table = table.filter(pc.is_in(table.column("image_id"), value_set=wanted))
            if not table.num_rows:
                continue
            ids = table.column("image_id").to_pylist()
            fresh = [row for row, image_id in enumerate(ids) if image_id not in seen and not seen.add(image_id)]
            pieces.append(table.take(pa.array(fresh, pa.int64())))
        if not pieces:
            return pa.table({"image_id": pa.array([], pa.string())})
        found = pa.concat_tables(pieces, promote_options="default")
        position = {image_id: row for row, image_id in enumerate(found.column("image_id").to_pylist())}
        order = [position[i] for i in image_ids if i in position]
        return found.take(pa.array(order, pa.int64()))

    def write(self, table: pa.Table, metadata: dict | None = None) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        if metadata and not (self.folder / "store.json").exists():
            atomic_write_text(self.folder / "store.json", json.dumps(metadata, indent=2, default=str))
        name = f"part-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
        final = self.folder / name
        temporary = self.folder / f".{name}.tmp"
        pq.write_table(table, temporary)
        os.replace(temporary, final)
        return final


class Committer:
    """Collects result tables and commits them to a store every `every` rows or `seconds` seconds.

    A killed job loses at most what came since the last commit.
    """

    def __init__(self, store: PartStore, every: int, seconds: float | None = None, metadata: dict | None = None):
        self.store = store
        self.every = every
        self.seconds = seconds
        self.metadata = metadata
        self.pending: list[pa.Table] = []
        self.rows = 0
        self.committed = 0
        self.last = time.monotonic()

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self.pending.append(table)
            self.rows += table.num_rows
        due = self.seconds is not None and time.monotonic() - self.last >= self.seconds
        if self.rows >= self.every or (due and self.rows):
            self.commit()

    def commit(self) -> None:
        if self.rows:
            self.store.write(pa.concat_tables(self.pending, promote_options="default"), self.metadata)
            self.committed += self.rows
        self.pending, self.rows, self.last = [], 0, time.monotonic()

    def __enter__(self) -> "Committer":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None or issubclass(kind, Exception):
            self.commit()  # an error in one batch must not cost the batches before it
