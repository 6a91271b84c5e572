"""Snakemake entry for rule manifest: check every image file and write results/manifest.parquet."""

import logging
import sys
from pathlib import Path

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd
from tqdm import tqdm

from imagecoding.manifest import build_manifest, manifest_table, read_listing, thumbnail_table
from imagecoding.outputs import write_parquet

config = snakemake.params.settings
root = config["images"]["root"]
cache_path = Path(snakemake.params.cache)

paths = read_listing(snakemake.params.listing)  # what the main process found, named by its fingerprint
cache = pd.read_parquet(cache_path) if cache_path.exists() else None
logging.info("%d files to account for under %s and in the posts table", len(paths), root)
with tqdm(total=len(paths), desc="manifest", unit="file", file=sys.stderr, mininterval=5) as bar:
    bar.update(0)
    frame = build_manifest(
        paths, root, config["images"]["max_pixels"], workers=snakemake.threads, cache=cache, progress=bar,
        extra_roots=config["images"]["extra_roots"],
    )
logging.info("read %d files, reused %d unchanged ones", frame.attrs["checked"], len(frame) - frame.attrs["checked"])
logging.info("status counts:\n%s", frame["status"].value_counts().to_string())

write_parquet(frame, cache_path)
write_parquet(manifest_table(frame), snakemake.output.manifest)
# The same decode's thumbnails, for the duplicate search: it never opens an image itself.
write_parquet(thumbnail_table(frame), snakemake.output.thumbnails)
