"""Snakemake entry for rule clip_weights: obtain the weights once (downloading if needed) and describe them.

No model is built here: a local checkpoint is only hashed, a zoo or Hub tag only resolved to its file.
"""

import json
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")

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
