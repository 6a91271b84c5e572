"""Snakemake entry for rule merge: join the manifest and every per-image result onto the posts."""

import logging
from pathlib import Path

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd

from imagecoding.consensus import consensus_for_merge
from imagecoding.duplicates.groups import groups_for_merge
from imagecoding.learn.probe import learned_for_merge
from imagecoding.merge import merge_posts, per_file_results
from imagecoding.outputs import write_csv, write_parquet
from imagecoding.posts import read_posts
from imagecoding.routing.tables import routed_for_merge
from imagecoding.signals.run import signal_for_merge
from imagecoding.tasks.ensemble import scheme_answers_for_merge
from imagecoding.tasks.frames import frames_for_merge

config = snakemake.params.settings
posts_config = config["posts"]
schemes = sorted(config["clip"]["schemes"])
manifest = pd.read_parquet(snakemake.input.manifest)
tables = [groups_for_merge(pd.read_parquet(snakemake.input.groups))]
tables += [pd.read_parquet(path) for path in snakemake.input.scores]
tables += [frames_for_merge(pd.read_parquet(path)) for path in snakemake.input.frames]
tables += [signal_for_merge(pd.read_parquet(path), Path(path).stem) for path in snakemake.input.signals]
tables += [scheme_answers_for_merge(pd.read_parquet(path), schemes) for path in snakemake.input.ensemble]
tables += [scheme_answers_for_merge(pd.read_parquet(path), schemes, "multimodal") for path in snakemake.input.multimodal]
for folder in map(Path, snakemake.input.routing):
    tables += [routed_for_merge(pd.read_parquet(folder / f"{scheme}.parquet"), scheme) for scheme in schemes]
for folder in map(Path, snakemake.input.learned):
    tables += [learned_for_merge(pd.read_parquet(path), path.stem) for path in sorted(folder.glob("*.parquet"))]
consensus = [path for path in snakemake.input.consensus if path.endswith(".parquet")]
tables += [consensus_for_merge(pd.read_parquet(path), Path(path).stem) for path in consensus]
files = per_file_results(manifest, tables)
posts = read_posts(posts_config["path"]) if posts_config["path"] else None
merged = merge_posts(
    files,
    posts,
    posts_config["image_column"],
    posts_config["id_column"],
    config["images"]["root"],
    posts_config["image_separator"],
)
logging.info(
    "%d rows: %d post-image rows, %d images without a post", len(merged), merged["has_post"].sum(), (~merged["has_post"]).sum()
)
write_parquet(merged, snakemake.output.parquet)
write_csv(merged, snakemake.output.csv)
