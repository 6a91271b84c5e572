"""Snakemake entry for rule frames_estimate: print the requests, tokens and dollars a frame-coding run would cost."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")

from imagecoding.tasks.frames_run import FrameRun

run = FrameRun.from_snakemake(snakemake, need_client=False)
report = run.estimate()
logging.info("%s", report)
print(report, flush=True)  # the terminal: this rule exists to be read
