"""Snakemake entry for rule signals_captions: a caption per decodable image, by CoCa locally or by the LLM."""

import json
import logging
import os
import sys

from imagecoding.job_log import log_to

log_to(snakemake.log[0])
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # captions_weights fetched the weights; compute nodes stay offline

import pandas as pd

from imagecoding.llm.engine import cost_ledger
from imagecoding.manifest import decodable_images
from imagecoding.outputs import write_csv, write_parquet
from imagecoding.tuning import from_resources

config, params = snakemake.params.settings, snakemake.params
tuning = from_resources(snakemake.resources, "device", "batch_size", "workers", "flush_every", "flush_seconds")
settings = dict(params.captions, **{key: tuning[key] for key in ("device", "batch_size", "workers")})
items = decodable_images(pd.read_parquet(snakemake.input.manifest), config["images"]["root"])

if settings["method"] == "llm":
    from tqdm import tqdm

    from imagecoding.tasks.captions import captions_from_answers, captions_run
    from imagecoding.tasks.run import llm_settings

    run = captions_run(dict(config, llm=llm_settings(params, snakemake.resources), signals={"captions": settings}), items)
    with tqdm(total=len(items), desc="captions", unit="img", file=sys.stderr, mininterval=5) as bar:
        table = run.execute(progress=bar)
    ledger = cost_ledger(table, run.task.name)
    table = captions_from_answers(table)
else:
    from imagecoding.clip.model import ModelSpec, load_clip, resolve_device
    from imagecoding.signals.captions import caption_tables, coca_precision
    from imagecoding.signals.run import compute_signal, signal_store

    weights = json.load(open(snakemake.input.weights))
    store_settings = {key: weights[key] for key in ("model", "pretrained", "weights_sha256", "open_clip")}
    store_settings["max_length"] = settings["max_length"]
    if settings["precision"] != "fp32":  # fp32 keeps the store it always had; int8 captions are kept apart
        store_settings["precision"] = settings["precision"]
    store = signal_store(params.store_dir, "captions", store_settings)

    def caption(todo):
        device = resolve_device(settings["device"])
        spec = ModelSpec(weights["model"], weights["pretrained"], weights["model_config"], key="signals.captions")
        model, preprocess, _ = load_clip(spec, device=device, cache_dir=params.cache_dir, checkpoint=weights["checkpoint"])
        model = coca_precision(model, settings["precision"], device)
        logging.info("%s on %s (%s), batch size %d", weights["model"], device, settings["precision"], settings["batch_size"])
        return caption_tables(
            model, preprocess, todo, device, settings["batch_size"], settings["workers"], settings["max_length"],
            weights["input_size"], config["images"]["max_pixels"],
        )

    table = compute_signal("captions", items, store, caption, tuning["flush_every"], tuning["flush_seconds"], store_settings)
    ledger = cost_ledger(None, "captions")
write_parquet(table, snakemake.output.table)
write_csv(ledger, snakemake.output.ledger)
