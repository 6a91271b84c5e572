"""Snakemake entry for rule ensemble_classify: an LLM classifies every selected image from its signals."""

import logging
import sys
from pathlib import Path

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd
from tqdm import tqdm

from imagecoding.stability.step import stability_of_rule
from imagecoding.tasks.ensemble import ensemble_run
from imagecoding.tasks.run import rule_inputs

config, manifest, posts = rule_inputs(snakemake)
signals = {Path(path).stem: pd.read_parquet(path) for path in snakemake.input.signals}
run = ensemble_run(config, manifest, signals, posts)
logging.info(
    "%d images selected; signals %s; %s mode; concurrency %d",
    len(run.requests), ", ".join(signals), run.engine.mode, run.engine.settings.max_concurrency,
)
with tqdm(total=len(run.requests), desc="ensemble", unit="img", file=sys.stderr, mininterval=5) as bar:
    table = run.execute(progress=bar)
table, more_ledger = stability_of_rule(
    snakemake, "ensemble", config, lambda c: ensemble_run(c, manifest, signals, posts), run, table
)
run.write(table, snakemake.output.table, snakemake.output.ledger, more_ledger)
