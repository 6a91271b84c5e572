"""Snakemake entry for rule clip_score: score every embedded image against one scheme's phrases."""

import json
import logging
import os

from imagecoding.job_log import log_to

log_to(snakemake.log[0])
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from functools import partial

from imagecoding.clip.phrases import phrase_embeddings, read_index, scores_from_store
from imagecoding.clip.scoring import score_table
from imagecoding.outputs import write_parquet
from imagecoding.schemes import load_scheme
from imagecoding.tuning import from_resources

params = snakemake.params
device = from_resources(snakemake.resources, "device")["device"]
weights = json.load(open(snakemake.input.weights))
scheme = load_scheme(snakemake.wildcards.scheme, snakemake.input.scheme)
image_ids, _ = read_index(snakemake.input.index)
phrases, scale, encoded = phrase_embeddings(weights, list(scheme.phrases), params.store_dir, device, params.cache_dir)
logging.info("%d phrases, %d encoded now (the rest from the phrase cache)", len(phrases), encoded)
score = partial(score_table, phrase_embeddings=phrases, scheme=scheme, logit_scale=scale, aggregate=params.aggregate, top_k=params.top_k)
table = scores_from_store(weights, params.store_dir, image_ids, score)
logging.info(
    "scheme %s: %d images, %d categories, %d phrases, aggregate %s\n%s",
    scheme.name, len(table), len(scheme.categories), len(scheme.phrases), params.aggregate,
    table[scheme.name].value_counts().to_string() if len(table) else "",
)
write_parquet(table, snakemake.output[0])
