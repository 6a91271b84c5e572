"""Snakemake entry for rule clip_weights: obtain the weights once (downloading if needed) and describe them.

No model is built here: a local checkpoint is only hashed, a zoo or Hub tag only resolved to its file. With
clip.precision auto, the one exception: a short probe (cached per machine and model) picks the mode.
"""

import json
import logging
import sys

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

from imagecoding.clip.backends import choose_backend
from imagecoding.clip.model import ModelSpec, fetch_weights, resolve_device, weights_key
from imagecoding.outputs import write_json
from imagecoding.tuning import from_resources
from imagecoding.weights import WeightsUnavailable

settings = snakemake.params.model
spec = ModelSpec(settings["model"], settings["pretrained"], settings["model_config"], settings["key"])
requested = settings["precision"]
try:
    description = fetch_weights(spec, snakemake.params.cache_dir, settings["draft"], "fp32" if requested == "auto" else requested)
    # torch (to find the device) is imported only when a choice needs it: describing weights stays cheap.
    choosing = requested == "auto" or settings["backend"] != "torch"
    device = resolve_device(from_resources(snakemake.resources, "device")["device"]) if choosing else None
    if requested == "auto":
        from imagecoding.clip.precision import resolve_auto

        record = resolve_auto(spec, description, snakemake.params.cache_dir, snakemake.params.store_dir, device,
                              snakemake.threads)
        description.update(precision=record["chosen"], precision_requested="auto", precision_probe=record)
    backend = choose_backend(settings["backend"], device, description["precision"]) if choosing else "torch"
    logging.info("image tower: %s backend (clip.backend %s), %s", backend, settings["backend"], description["precision"])
    description.update(backend=backend, store_key=weights_key(spec, description["weights_sha256"], settings["draft"],
                                                              description["precision"], backend))
except WeightsUnavailable as problem:
    logging.error("%s", problem)  # the message is the whole story; a traceback would bury it
    sys.exit(1)
logging.info("weights ready: %s", json.dumps(description))
write_json(snakemake.output[0], description)
