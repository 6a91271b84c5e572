"""Snakemake entry for rule report: render the self-contained HTML report folder."""

import json
import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")

import pandas as pd

from imagecoding.provenance import environment, file_record, now, workflow_revision
from imagecoding.tasks.codebook import load_codebook
from imagecoding.report.build import ReportSettings, build_report, failure_table
from imagecoding.report.frames import FramesResult
from imagecoding.report.schemes import SchemeResult
from imagecoding.schemes import load_scheme

config = snakemake.config
manifest = pd.read_parquet(snakemake.input.manifest)
merged = pd.read_parquet(snakemake.input.merged)
shards = pd.concat([pd.read_parquet(p, columns=["image_id", "status", "error"]) for p in snakemake.input.shards])
weights = json.load(open(snakemake.input.weights))

results = []
for name, score_path in zip(sorted(config["clip"]["schemes"]), snakemake.input.scores):
    scheme = load_scheme(name, config["clip"]["schemes"][name])
    results.append(
        SchemeResult(
            name=name,
            scores=pd.read_parquet(score_path),
            categories=list(scheme.categories),
            phrases={c: scheme.phrases_of(c) for c in scheme.categories},
        )
    )

provenance = {
    "generated": now(),
    "workflow_revision": workflow_revision(snakemake.params.workflow_dir),
    "clip": dict(weights, aggregate=config["clip"]["aggregate"], top_k=config["clip"]["top_k"]),
    "schemes": {name: file_record(path) for name, path in sorted(config["clip"]["schemes"].items())},
    "images_root": config["images"]["root"],
    "posts": file_record(config["posts"]["path"]) if config["posts"]["path"] else None,
    "environment": environment(),
    "config": config,
}
frames = None
if snakemake.input.frames:
    codebook = load_codebook(config["frames"]["codebook"])
    frames = FramesResult(pd.read_parquet(snakemake.input.frames[0]), codebook.variables)
    provenance["frames"] = {
        "codebook": file_record(config["frames"]["codebook"]),
        "prompt": file_record(config["frames"]["prompt"]),
        "llm": {k: v for k, v in config["llm"].items() if k not in ("prices",)},
        "price": config["llm"]["prices"].get(config["llm"]["model"]),
    }
settings = ReportSettings(account_column=config["posts"]["account_column"], **config["report"])
index = build_report(
    snakemake.output[0],
    manifest,
    merged,
    results,
    failure_table(manifest, shards[shards["status"] != "ok"]),
    provenance,
    config["images"]["root"],
    settings,
    workers=snakemake.threads,
    frames=frames,
)
logging.info("report written to %s", index)
