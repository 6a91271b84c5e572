"""Snakemake entry for rule signals_tags: score the object vocabulary against every stored CLIP embedding."""

import json
import logging
import os

from imagecoding.job_log import log_to

log_to(snakemake.log[0])
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd

from imagecoding.clip.phrases import phrase_embeddings, read_index, scores_from_store
from imagecoding.outputs import write_parquet
from imagecoding.signals.tags import load_vocabulary, tag_table
from imagecoding.tuning import from_resources

params = snakemake.params
device = from_resources(snakemake.resources, "device")["device"]
weights = json.load(open(snakemake.input.weights))
words = load_vocabulary(snakemake.input.vocabulary)
image_ids, failures = read_index(snakemake.input.index)
vectors, scale, _ = phrase_embeddings(weights, [params.template.format(w) for w in words], params.store_dir, device, params.cache_dir)


def tags(ids, embeddings):
    return tag_table(ids, embeddings, vectors, words, scale, params.top_k, params.min_prob).to_pandas()


table = pd.concat([scores_from_store(weights, params.store_dir, image_ids, tags), tag_table([], None, vectors, words, scale, 1, 0, failures).to_pandas()], ignore_index=True)
logging.info("tags: %d images, %d words, %d failed embeddings", len(image_ids), len(words), len(failures))
write_parquet(table, snakemake.output[0])
