"""Snakemake entry for rule objects_weights: fetch the detector's weights once (the only networked objects step)."""

import logging
import sys

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

from imagecoding.outputs import write_json
from imagecoding.signals.objects import DetectorSpec, fetch_detector
from imagecoding.weights import WeightsUnavailable

spec = DetectorSpec(snakemake.params.model, snakemake.params.weights)
try:
    description = fetch_detector(spec, snakemake.params.cache_dir)
except WeightsUnavailable as problem:
    logging.error("%s", problem)  # the message is the whole story; a traceback would bury it
    sys.exit(1)
logging.info("detector weights ready: %s", {k: v for k, v in description.items() if k != "categories"})
write_json(snakemake.output[0], description)
