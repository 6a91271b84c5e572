"""Snakemake entry for rule signals_objects: detect COCO objects (and count people) in every decodable image."""

import json
import logging
import os

from imagecoding.job_log import log_to

log_to(snakemake.log[0])
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # objects_weights fetched the weights; compute nodes stay offline

import pandas as pd

from imagecoding.clip.model import resolve_device
from imagecoding.manifest import decodable_images
from imagecoding.outputs import write_parquet
from imagecoding.signals.objects import DetectorSpec, detect_tables, load_detector, prepare_detector
from imagecoding.signals.run import compute_signal, signal_store
from imagecoding.tuning import from_resources

config, params = snakemake.params.settings, snakemake.params
tuning = from_resources(snakemake.resources, "device", "batch_size", "workers", "flush_every", "flush_seconds")
fetched = json.load(open(snakemake.input.weights))
settings = dict(params.objects, **{key: tuning[key] for key in ("device", "batch_size", "workers")})
store_settings = {"model": fetched["model"], "weights_sha256": fetched["weights_sha256"], "min_score": settings["min_score"]}
# fp32 on torch keeps the store it always had; another precision or backend fills stores of its own
store_settings.update({key: settings[key] for key, exact in (("precision", "fp32"), ("backend", "torch")) if settings[key] != exact})
items = decodable_images(pd.read_parquet(snakemake.input.manifest), config["images"]["root"])
store = signal_store(params.store_dir, "objects", store_settings)


def detect(todo):
    device = resolve_device(settings["device"])
    spec = DetectorSpec(fetched["model"], fetched["weights"])
    model, preprocess, categories, min_side = load_detector(spec, params.cache_dir, device, settings["min_score"])
    model = prepare_detector(model, spec, settings["precision"], settings["backend"], device, fetched["weights_sha256"],
                             params.store_dir, min_side, snakemake.threads)
    logging.info("%s on %s (%s, %s), batch size %d, min score %.2f", fetched["model"], device, settings["precision"],
                 settings["backend"], settings["batch_size"], settings["min_score"])
    return detect_tables(
        model, preprocess, categories, todo, settings["min_score"], min_side, device,
        settings["batch_size"], settings["workers"], config["images"]["max_pixels"],
    )


table = compute_signal("objects", items, store, detect, tuning["flush_every"], tuning["flush_seconds"], store_settings)
write_parquet(table, snakemake.output[0])
