"""Snakemake entry for rule frames_code: code every selected image with the multimodal LLM."""

import logging
import sys

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

from tqdm import tqdm

from imagecoding.tasks.frames import frames_run
from imagecoding.tasks.run import reused_groups, rule_inputs

run = frames_run(*rule_inputs(snakemake))
run.groups = reused_groups(snakemake)  # one question per near-duplicate group, its answer for every copy
logging.info("%d images selected; %s mode; concurrency %d", len(run.requests), run.engine.mode, run.engine.settings.max_concurrency)
with tqdm(total=len(run.requests), desc="frames", unit="img", file=sys.stderr, mininterval=5) as bar:
    table = run.execute(progress=bar)
run.write(table, snakemake.output.frames, snakemake.output.ledger)
