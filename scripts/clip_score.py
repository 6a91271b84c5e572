"""Snakemake entry for rule clip_score: score every embedded image against one scheme's phrases."""

import json
import logging
import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from imagecoding.clip.phrases import embedded_images, phrase_embeddings
from imagecoding.clip.scoring import score_table
from imagecoding.schemes import load_scheme

params = snakemake.params
weights = json.load(open(snakemake.input.weights))
scheme = load_scheme(snakemake.wildcards.scheme, snakemake.input.scheme)
image_ids, embeddings, _ = embedded_images(snakemake.input.shards)
table = score_table(
    image_ids,
    embeddings,
    phrase_embeddings(weights, list(scheme.phrases), params.device, params.cache_dir),
    scheme,
    logit_scale=weights["logit_scale"],
    aggregate=params.aggregate,
    top_k=params.top_k,
)
logging.info(
    "scheme %s: %d images, %d categories, %d phrases, aggregate %s\n%s",
    scheme.name, len(table), len(scheme.categories), len(scheme.phrases), params.aggregate,
    table[scheme.name].value_counts().to_string() if len(table) else "",
)
table.to_parquet(snakemake.output[0], index=False)
