"""Snakemake entry for rule compact: rewrite every store's parts so each image is stored once, in few parts."""

import logging
from pathlib import Path

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pyarrow.parquet as pq

from imagecoding.store import PartStore

for root in snakemake.params.stores:
    # A store is a folder holding part-*.parquet; embeddings keep one per model and weights, signals one per settings.
    folders = sorted({part.parent for part in Path(root).rglob("part-*.parquet")})
    for folder in folders:
        names = pq.read_schema(next(folder.glob("part-*.parquet"))).names
        key = "image_id" if "image_id" in names else "phrase"  # the phrase cache is keyed by phrase
        before, after, duplicates = PartStore(folder, key=key).compact(snakemake.params.rows_per_part)
        logging.info("%s: %d parts -> %d, %d duplicate rows dropped", folder, before, after, duplicates)
    if not folders:
        logging.info("%s: no store yet", root)
