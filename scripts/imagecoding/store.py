"""Per-image results kept across runs: append-only parquet parts keyed by image_id, each committed atomically.

Embeddings and every signal (OCR, objects, captions) keep their results in a store named by the
settings that produced them, so adding 10 images to 100,000 computes 10, and a killed job keeps every
part it committed.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .outputs import write_json, write_parquet


def _first_sightings(keys: list[str], seen: set[str]) -> list[int]:
    """Row numbers of keys not in `seen` (nor earlier in `keys`); adds them to `seen`."""
    rows = []
    for row, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


class PartStore:
    """Rows keyed by `key` (image_id unless said otherwise) in uniquely named parts, each written to a
    temporary name and then renamed.

    Parallel jobs never collide, and readers never see half a part. When a key is stored twice
    (two runs raced), the first part found wins; both hold the same result.
    """

    def __init__(self, folder: str | Path, key: str = "image_id"):
        self.folder = Path(folder)
        self.key = key

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet"))

    def known_ids(self) -> set[str]:
        known: set[str] = set()
        for part in self.parts():
            known.update(pq.read_table(part, columns=[self.key]).column(self.key).to_pylist())
        return known

    def iter_parts(self, wanted: set[str] | list[str], columns: list[str] | None = None):
        """Stored rows of the wanted keys part by part, each key once: memory follows a part, not the store."""
        value_set = pa.array(sorted(set(wanted)), pa.string())
        seen: set[str] = set()
        for part in self.parts():
            table = pq.read_table(part, columns=columns and [self.key, *[c for c in columns if c != self.key]])
            table = table.filter(pc.is_in(table.column(self.key), value_set=value_set))
            if not table.num_rows:
                continue
            fresh = _first_sightings(table.column(self.key).to_pylist(), seen)
            if fresh:
                yield table.take(pa.array(fresh, pa.int64()))

    def read(self, image_ids: list[str], columns: list[str] | None = None) -> pa.Table:
        """Stored rows of the requested keys, one per key, in the requested order; keys not stored are left out."""
        pieces = list(self.iter_parts(image_ids, columns))
        if not pieces:
            return pa.table({self.key: pa.array([], pa.string())})
        found = pa.concat_tables(pieces, promote_options="default")
        position = {key: row for row, key in enumerate(found.column(self.key).to_pylist())}
        order = [position[i] for i in image_ids if i in position]
        return found.take(pa.array(order, pa.int64()))

    def write(self, table: pa.Table, metadata: dict | None = None) -> Path:
        if metadata and not (self.folder / "store.json").exists():
            write_json(self.folder / "store.json", metadata)
        final = self.folder / f"part-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
        write_parquet(table, final)
        return final

    def compact(self, rows_per_part: int = 100_000) -> tuple[int, int, int]:
        """Rewrite the parts as few parts holding each key once; returns (parts before, after, duplicates dropped).

        Two runs sharing a store, or a job re-run after a kill, can store a key twice; reads stay right
        (the first part found wins), and compaction drops the copies. The new parts are committed
        before the old ones are removed, so a kill at any point loses nothing. Run it while no job
        writes to or reads from this store (`snakemake compact`).
        """
        old = self.parts()
        if len(old) < 2:
            return len(old), len(old), 0
        seen: set[str] = set()
        pending: list[pa.Table] = []
        pending_rows = duplicates = 0
        written: list[Path] = []
        for part in old:
            table = pq.read_table(part)
            fresh = _first_sightings(table.column(self.key).to_pylist(), seen)
            duplicates += table.num_rows - len(fresh)
            if fresh:
                pending.append(table.take(pa.array(fresh, pa.int64())))
                pending_rows += len(fresh)
            if pending_rows >= rows_per_part:
                written.append(self.write(pa.concat_tables(pending, promote_options="default")))
                pending, pending_rows = [], 0
        if pending:
            written.append(self.write(pa.concat_tables(pending, promote_options="default")))
        for part in old:
            part.unlink()
        return len(old), len(written), duplicates


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
