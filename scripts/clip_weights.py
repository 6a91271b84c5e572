"""Snakemake entry for rule clip_weights: obtain the weights once (downloading if needed) and describe them.

No model is built here: a local checkpoint is only hashed, a zoo or Hub tag only resolved to its file. With
clip.precision auto, the one exception: a short probe (cached per machine and model) picks the mode.
"""

import json
import logging
import sys

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

from imagecoding.clip.model import ModelSpec, fetch_weights, weights_key
from imagecoding.outputs import write_json
from imagecoding.tuning import from_resources
from imagecoding.weights import WeightsUnavailable

settings = snakemake.params.model
spec = ModelSpec(settings["model"], settings["pretrained"], settings["model_config"], settings["key"])
requested = settings["precision"]
try:
    description = fetch_weights(spec, snakemake.params.cache_dir, settings["draft"], "fp32" if requested == "auto" else requested)
    if requested == "auto":
        from imagecoding.clip.model import resolve_device
        from imagecoding.clip.precision import resolve_auto

        device = resolve_device(from_resources(snakemake.resources, "device")["device"])
        record = resolve_auto(spec, description, snakemake.params.cache_dir, snakemake.params.store_dir, device,
                              snakemake.threads)
        chosen = record["chosen"]
        description.update(precision=chosen, precision_requested="auto", precision_probe=record,
                           store_key=weights_key(spec, description["weights_sha256"], settings["draft"], chosen))
except WeightsUnavailable as problem:
    logging.error("%s", problem)  # the message is the whole story; a traceback would bury it
    sys.exit(1)
logging.info("weights ready: %s", json.dumps(description))
write_json(snakemake.output[0], description)
