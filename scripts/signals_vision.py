"""Snakemake entry for rule signals_vision: labels, objects and text from Google Cloud Vision (opt-in, paid)."""

import logging
import time

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd
import pyarrow as pa

from imagecoding.response_cache import ResponseCache
from imagecoding.manifest import decodable_images
from imagecoding.outputs import write_parquet
from imagecoding.signals.vision import SCHEMA, VisionSettings, vision_tables
from imagecoding.tuning import from_resources

config = snakemake.params.settings
settings = VisionSettings.from_config(dict(snakemake.params.vision, **from_resources(snakemake.resources, "max_concurrency")))
items = decodable_images(pd.read_parquet(snakemake.input.manifest), config["images"]["root"])
started = time.perf_counter()
tables = list(vision_tables(items, settings, ResponseCache(snakemake.params.cache), max_pixels=config["images"]["max_pixels"]))
table = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
elapsed = time.perf_counter() - started
frame = table.to_pandas()
logging.info(
    "vision: %d images in %.1f s (%.2f images/s), %d from the cache, $%.4f paid now; status counts:\n%s",
    len(items), elapsed, len(items) / elapsed if elapsed else 0.0, int(frame["cached"].fillna(False).sum()),
    frame.loc[~frame["cached"].fillna(False).astype(bool), "cost_usd"].fillna(0).sum(),
    frame["status"].value_counts().to_string(),
)
write_parquet(frame, snakemake.output[0])
