"""Snakemake entry for rule frames_code: code every selected image with the multimodal LLM."""

import logging
import sys

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

from tqdm import tqdm

from imagecoding.stability.step import stability_of_rule
from imagecoding.tasks.frames import frames_run
from imagecoding.tasks.run import reused_groups, rule_inputs

config, manifest, posts = rule_inputs(snakemake)
run = frames_run(config, manifest, posts)
run.groups = reused_groups(snakemake)  # one question per near-duplicate group, its answer for every copy
logging.info("%d images selected; %s mode; concurrency %d", len(run.requests), run.engine.mode, run.engine.settings.max_concurrency)
with tqdm(total=len(run.requests), desc="frames", unit="img", file=sys.stderr, mininterval=5) as bar:
    table = run.execute(progress=bar)
table, more_ledger = stability_of_rule(snakemake, "frames", config, lambda c: frames_run(c, manifest, posts), run, table)
run.write(table, snakemake.output.frames, snakemake.output.ledger, more_ledger)
