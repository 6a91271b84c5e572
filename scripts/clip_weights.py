"""Snakemake entry for rule clip_weights: obtain the CLIP weights once (downloading if needed) and describe them."""

import json
import logging
import sys
from importlib import metadata

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")

from imagecoding.clip.model import ModelSpec, WeightsUnavailable, input_size, load_clip, weights_key
from imagecoding.clip.embeddings import logit_scale
from imagecoding.images import file_sha256

settings = snakemake.params.model
spec = ModelSpec(settings["model"], settings["pretrained"], settings["model_config"], settings.get("key", "clip"))
try:
    model, _, _ = load_clip(spec, device="cpu", cache_dir=snakemake.params.cache_dir)
except WeightsUnavailable as problem:
    logging.error("%s", problem)  # the message is the whole story; a traceback would bury it
    sys.exit(1)
checkpoint_sha256 = file_sha256(spec.pretrained) if spec.pretrained_is_file else None
description = {
    "model": spec.model,
    "pretrained": spec.pretrained,
    "model_config": spec.model_config,
    "model_config_sha256": file_sha256(spec.model_config) if spec.model_config else None,
    "weights_sha256": checkpoint_sha256,
    "draft": settings["draft"],
    "store_key": weights_key(spec, checkpoint_sha256, settings["draft"]),
    "input_size": input_size(model),
    "logit_scale": logit_scale(model),
    "open_clip": metadata.version("open_clip_torch"),
}
logging.info("weights ready: %s", json.dumps(description))
with open(snakemake.output[0], "w") as handle:
    json.dump(description, handle, indent=2)
