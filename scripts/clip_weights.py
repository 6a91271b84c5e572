"""Snakemake entry for rule clip_weights: obtain the weights once (downloading if needed) and describe them.

No model is built here: a local checkpoint is only hashed, a zoo or Hub tag only resolved to its file.
"""

import json
import logging
import sys

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

from imagecoding.clip.model import ModelSpec, fetch_weights
from imagecoding.outputs import write_json
from imagecoding.weights import WeightsUnavailable

settings = snakemake.params.model
spec = ModelSpec(settings["model"], settings["pretrained"], settings["model_config"], settings["key"])
try:
    description = fetch_weights(spec, snakemake.params.cache_dir, settings["draft"], settings["precision"])
except WeightsUnavailable as problem:
    logging.error("%s", problem)  # the message is the whole story; a traceback would bury it
    sys.exit(1)
logging.info("weights ready: %s", json.dumps(description))
write_json(snakemake.output[0], description)
