"""Snakemake entry for rule frames_code: code every selected image with the multimodal LLM."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
for noisy in ("httpx", "openai"):
    logging.getLogger(noisy).setLevel(logging.WARNING)

from tqdm import tqdm

from imagecoding.tasks.frames import frames_run
from imagecoding.tasks.run import rule_inputs

run = frames_run(*rule_inputs(snakemake))
logging.info("%d images selected; %s mode; concurrency %d", len(run.requests), run.engine.mode, run.engine.settings.max_concurrency)
with tqdm(total=len(run.requests), desc="frames", unit="img", file=sys.stderr, mininterval=5) as bar:
    table = run.execute(progress=bar)
run.write(table, snakemake.output.frames, snakemake.output.ledger)
