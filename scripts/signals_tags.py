"""Snakemake entry for rule signals_tags: score the object vocabulary against every stored CLIP embedding."""

import json
import logging
import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from imagecoding.clip.phrases import embedded_images, phrase_embeddings
from imagecoding.signals.tags import load_vocabulary, tag_table

params = snakemake.params
weights = json.load(open(snakemake.input.weights))
words = load_vocabulary(snakemake.input.vocabulary)
image_ids, embeddings, failures = embedded_images(snakemake.input.shards)
word_embeddings = phrase_embeddings(weights, [params.template.format(w) for w in words], params.device, params.cache_dir)
table = tag_table(image_ids, embeddings, word_embeddings, words, weights["logit_scale"], params.top_k, params.min_prob, failures)
logging.info("tags: %d images, %d words, %d failed embeddings", len(image_ids), len(words), len(failures))
table.to_pandas().to_parquet(snakemake.output[0], index=False)
