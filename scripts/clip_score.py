"""Snakemake entry for rule clip_score: score every embedded image against one scheme's phrases."""

import json
import logging
import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from imagecoding.clip.model import ModelSpec, load_clip, resolve_device
from imagecoding.clip.embeddings import embedding_matrix, encode_phrases
from imagecoding.schemes import load_scheme
from imagecoding.clip.scoring import score_table

params = snakemake.params
weights = json.load(open(snakemake.input.weights))
scheme = load_scheme(snakemake.wildcards.scheme, snakemake.input.scheme)

shards = pa.concat_tables([pq.read_table(path) for path in snakemake.input.shards])
embedded = shards.filter(pc.equal(shards.column("status"), "ok"))
device = resolve_device(params.device)
model, _, tokenizer = load_clip(
    ModelSpec(weights["model"], weights["pretrained"], weights["model_config"]),
    device=device,
    cache_dir=params.cache_dir,
)
phrase_embeddings = encode_phrases(model, tokenizer, list(scheme.phrases), device)
table = score_table(
    embedded.column("image_id").to_pylist(),
    embedding_matrix(embedded.column("embedding")),
    phrase_embeddings,
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
