"""Running one signal over a corpus: only the images its store lacks, committed as they come, images/s logged."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pandas as pd
import pyarrow as pa

from ..store import Committer, PartStore

log = logging.getLogger(__name__)

SIGNALS = ("ocr", "objects", "tags", "captions", "vision")


def settings_key(settings: dict) -> str:
    """Name of a signal's store: a hash of everything that shapes its results (languages, model, thresholds)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def signal_store(store_dir: str | Path, signal: str, settings: dict) -> PartStore:
    return PartStore(Path(store_dir) / signal / settings_key(settings))


def rows_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Result rows as a table of the signal's schema: image_id, its fields, status, error."""
    return pa.Table.from_pylist(rows, schema=schema)


def failed_row(image_id: str, status: str, error: str) -> dict:
    return {"image_id": image_id, "status": status, "error": error}


def loader_failure(image_id: str, message: str) -> dict:
    """A row for an image the batch loader could not use ("status: detail", as images.image_batches gives it)."""
    status, _, detail = message.partition(": ")
    return failed_row(image_id, status, detail or message)


def compute_signal(
    signal: str,
    items: list[tuple[str, str]],
    store: PartStore,
    compute: Callable[[list[tuple[str, str]]], Iterable[pa.Table]],
    every: int = 256,
    seconds: float | None = 60,
    metadata: dict | None = None,
) -> pd.DataFrame:
    """The signal's rows for every (image_id, path) item, computing only what the store lacks.

    `compute` yields result tables batch by batch; each is committed to the store as it comes,
    so a killed job keeps what it did.
    """
    from tqdm import tqdm

    known = store.known_ids()
    todo = [item for item in items if item[0] not in known]
    log.info(
        "%s: %d images, %d already in the store %s, %d to compute",
        signal, len(items), len(items) - len(todo), store.folder, len(todo),
    )
    if todo:
        started = time.perf_counter()
        with Committer(store, every, seconds, metadata) as committer, tqdm(
            total=len(todo), desc=signal, unit="img", file=sys.stderr, mininterval=10
        ) as bar:
            for table in compute(todo):
                committer.add(table)
                bar.update(table.num_rows)
        elapsed = time.perf_counter() - started
        log.info("%s: %d images in %.1f s (%.2f images/s)", signal, len(todo), elapsed, len(todo) / elapsed if elapsed else 0.0)
    table = store.read([image_id for image_id, _ in items]).to_pandas()
    if len(table):
        log.info("%s status counts:\n%s", signal, table["status"].value_counts().to_string())
    return table


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def signal_for_merge(table: pd.DataFrame, signal: str) -> pd.DataFrame:
    """The scalar fields worth a column in merged.csv, prefixed with the signal's name; lists stay in the signal's file."""
    import importlib

    columns = importlib.import_module(f"{__package__}.{signal}").MERGE_COLUMNS
    kept = table[["image_id", *columns, "status", "error"]]
    return kept.rename(columns={c: f"{signal}_{c}" for c in [*columns, "status", "error"]})
