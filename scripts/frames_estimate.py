"""Snakemake entry for rule frames_estimate: print the requests, tokens and dollars a frame-coding run would cost."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")

from imagecoding.tasks.frames import frames_run
from imagecoding.tasks.run import rule_inputs

report = frames_run(*rule_inputs(snakemake), need_client=False).estimate()
logging.info("%s", report)
print(report, flush=True)  # the terminal: this rule exists to be read
