"""Snakemake entry for rule clip_embed: embed one shard's images that the store does not hold yet."""

import json
import logging
import os
import sys
import time

from imagecoding.job_log import log_to

log_to(snakemake.log[0])
# clip_weights fetched the weights; compute nodes must not wait on a network they may not have.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
from tqdm import tqdm

from imagecoding.clip.embeddings import EmbeddingStore, embed_batches, embed_into_store, index_table, loader_settings, shard_items
from imagecoding.clip.model import ModelSpec, load_clip, resolve_device, weights_key
from imagecoding.clip.phrases import warm_phrase_cache
from imagecoding.outputs import write_parquet
from imagecoding.schemes import load_scheme
from imagecoding.tuning import from_resources

config, params = snakemake.params.settings, snakemake.params
tuning = from_resources(snakemake.resources, "batch_size", "device", "workers", "flush_every", "flush_seconds", "warm_schemes")
weights = json.load(open(snakemake.input.weights))
shard, shards = (int(part) for part in snakemake.wildcards.shard.split("-of-"))

manifest = pd.read_parquet(snakemake.input.manifest)
items = shard_items(manifest, config["images"]["root"], shard, shards)
store = EmbeddingStore(os.path.join(params.store_dir, weights["store_key"]))
known = store.known_ids()
todo = [item for item in items if item[0] not in known]
logging.info(
    "shard %d of %d: %d images, %d already in the store %s, %d to embed",
    shard + 1, shards, len(items), len(items) - len(todo), store.folder, len(todo),
)

failures: dict[str, str] = {}
if todo:
    device = resolve_device(tuning["device"])
    batch_size, workers = loader_settings(device, snakemake.threads, tuning["batch_size"], tuning["workers"])
    spec = ModelSpec(weights["model"], weights["pretrained"], weights["model_config"])
    backend = weights.get("backend", "torch")
    model, preprocess, tokenizer = load_clip(
        spec, device=device, cache_dir=params.cache_dir, checkpoint=weights["checkpoint"],
        precision="fp32" if backend == "openvino" else weights["precision"],
    )
    if backend == "openvino":  # the exact torch model is what OpenVINO converts; its own hint gives bf16
        from imagecoding.clip.backends import with_openvino

        model = with_openvino(model, weights["precision"], params.store_dir, weights_key(spec, weights["weights_sha256"]),
                              weights["input_size"], snakemake.threads)
    logging.info(
        "embedding on %s (%s, %s) with batch size %d, %d loader workers, %d threads",
        device, backend, weights["precision"], batch_size, workers, snakemake.threads,
    )
    metadata = {key: weights[key] for key in ("model", "pretrained", "weights_sha256", "draft", "precision", "open_clip")}
    metadata["backend"] = backend
    batches = embed_batches(
        model,
        preprocess,
        todo,
        device=device,
        batch_size=batch_size,
        workers=workers,
        min_side=weights["input_size"] if weights["draft"] else None,
        max_pixels=config["images"]["max_pixels"],
    )
    started = time.perf_counter()
    with tqdm(total=len(todo), desc="embed", unit="img", file=sys.stderr, mininterval=10) as bar:
        failures = embed_into_store(batches, store, metadata, tuning["flush_every"], bar, tuning["flush_seconds"])
    elapsed = time.perf_counter() - started
    embedded = len(todo) - len(failures)
    logging.info(
        "embedded %d new images in %.1f s (%.1f images/s); %d failed",
        embedded, elapsed, embedded / elapsed if elapsed else 0.0, len(failures),
    )
    for image_id, error in failures.items():
        logging.warning("could not embed %s: %s", image_id, error)
    # The model is loaded anyway: encode the phrases scoring will need, so it builds no model itself.
    # Scheme files are read, not declared as inputs: editing one must not re-run embedding.
    phrases = [p for path in tuning["warm_schemes"] for p in load_scheme("any", path).phrases]
    encoded = warm_phrase_cache(weights, params.store_dir, phrases, model, tokenizer, device)
    logging.info("%d scheme phrases encoded for scoring", encoded)

write_parquet(index_table([image_id for image_id, _ in items], failures), snakemake.output[0])
