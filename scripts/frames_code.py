"""Snakemake entry for rule frames_code: code every selected image with the multimodal LLM."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
for noisy in ("httpx", "openai"):
    logging.getLogger(noisy).setLevel(logging.WARNING)

from tqdm import tqdm

from imagecoding.tasks.frames_run import FrameRun

run = FrameRun.from_snakemake(snakemake)
logging.info("%d images selected; %s mode; concurrency %d", len(run.tasks), run.mode, run.settings.max_concurrency)
with tqdm(total=len(run.tasks), desc="frames", unit="img", file=sys.stderr, mininterval=5) as bar:
    table = run.execute(progress=bar)
run.write(table, snakemake.output.frames, snakemake.output.ledger)
