"""Snakemake entry for rule clip_embed: embed one shard's images that the store does not hold yet."""

import json
import logging
import os
import sys
import time

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
# clip_weights fetched the weights; compute nodes must not wait on a network they may not have.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from imagecoding.clip.model import ModelSpec, load_clip, resolve_device
from imagecoding.clip.embeddings import EmbeddingStore, embed_batches, embed_into_store, shard_items, shard_table

config = snakemake.config
params = snakemake.params
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
    device = resolve_device(params.device)
    spec = ModelSpec(weights["model"], weights["pretrained"], weights["model_config"])
    model, preprocess, _ = load_clip(spec, device=device, cache_dir=params.cache_dir)
    logging.info("embedding on %s with batch size %d and %d loader workers", device, params.batch_size, params.workers)
    metadata = {key: weights[key] for key in ("model", "pretrained", "weights_sha256", "draft", "open_clip")}
    batches = embed_batches(
        model,
        preprocess,
        todo,
        device=device,
        batch_size=params.batch_size,
        workers=params.workers,
        min_side=weights["input_size"] if weights["draft"] else None,
        max_pixels=config["images"]["max_pixels"],
    )
    started = time.perf_counter()
    with tqdm(total=len(todo), desc="embed", unit="img", file=sys.stderr, mininterval=10) as bar:
        failures = embed_into_store(batches, store, metadata, params.flush_every, bar)
    elapsed = time.perf_counter() - started
    embedded = len(todo) - len(failures)
    logging.info(
        "embedded %d new images in %.1f s (%.1f images/s); %d failed",
        embedded, elapsed, embedded / elapsed if elapsed else 0.0, len(failures),
    )
    for image_id, error in failures.items():
        logging.warning("could not embed %s: %s", image_id, error)

ids, matrix = store.read_embeddings([image_id for image_id, _ in items])
pq.write_table(shard_table(ids, matrix, failures), snakemake.output[0])
