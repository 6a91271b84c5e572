"""Snakemake entry for rule report: render the self-contained HTML report folder."""

import json
import logging
from pathlib import Path

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd

from imagecoding.provenance import environment, file_record, now, step_environment, workflow_revision
from imagecoding.report.build import build_report, failure_table
from imagecoding.report.settings import ReportSettings
from imagecoding.report.frames import FramesResult
from imagecoding.report.schemes import SchemeResult
from imagecoding.schemes import load_scheme
from imagecoding.tasks.codebook import load_codebook

config, steps = snakemake.params.settings, snakemake.params.steps
inputs = snakemake.input
manifest = pd.read_parquet(inputs.manifest)
merged = pd.read_parquet(inputs.merged)
shards = pd.concat([pd.read_parquet(p) for p in inputs.index])
weights = json.load(open(inputs.weights))

score_paths = {Path(path).stem: path for path in inputs.scores}  # clip/<scheme>.parquet
results = []
for name in sorted(config["clip"]["schemes"]):
    scheme = load_scheme(name, config["clip"]["schemes"][name])
    results.append(
        SchemeResult(
            name=name,
            scores=pd.read_parquet(score_paths[name]),
            categories=list(scheme.categories),
            phrases={c: scheme.phrases_of(c) for c in scheme.categories},
        )
    )


def llm_record(step: str) -> dict:
    llm = dict(steps[step]["settings"]["llm"])
    return {"llm": {k: v for k, v in llm.items() if k != "prices"}, "price": llm["prices"].get(llm["model"])}


clip_step = steps["clip_score"]["settings"]
provenance = {
    "generated": now(),
    # The checkout the library ran from: not a param, so moving the checkout re-runs nothing.
    "workflow_revision": workflow_revision(),
    "clip": dict(weights, aggregate=clip_step["aggregate"], top_k=clip_step["top_k"]),
    "schemes": {name: file_record(path) for name, path in sorted(config["clip"]["schemes"].items())},
    "images_root": config["images"]["root"],
    "posts": file_record(config["posts"]["path"]) if config["posts"]["path"] else None,
    "environment": environment(),
    # Every step the report reads: the library code key it ran, exactly the settings it used, its env
    # file (the step's whole pinned closure) and the packages its jobs actually ran with.
    "steps": {
        **{name: {"code": step["code"], "settings": step["settings"],
                  "environment": step_environment(step["env"], step["logs"])} for name, step in steps.items()},
        "report": {"code": snakemake.params.code, "settings": config,
                   "environment": step_environment("envs/core.yaml", [snakemake.log[0]])},
    },
}
frames = None
if inputs.frames:
    codebook = load_codebook(config["frames"]["codebook"])
    frames = FramesResult(pd.read_parquet(inputs.frames[0]), codebook.variables)
    provenance["frames"] = {
        "codebook": file_record(config["frames"]["codebook"]),
        "prompt": file_record(config["frames"]["prompt"]),
        **llm_record("frames_code"),
    }
signals = {Path(path).stem: pd.read_parquet(path) for path in inputs.signals}
ensemble = pd.read_parquet(inputs.ensemble[0]) if inputs.ensemble else None
if ensemble is not None:
    provenance["ensemble"] = {"prompt": file_record(config["ensemble"]["prompt"]), **llm_record("ensemble_classify")}
multimodal = pd.read_parquet(inputs.multimodal[0]) if inputs.multimodal else None
if multimodal is not None:
    provenance["multimodal"] = {"prompt": file_record(config["multimodal"]["prompt"]), **llm_record("multimodal_classify")}
routing = None
if inputs.routing:
    from imagecoding.report.routing import routing_view

    routing = routing_view(inputs.routing[0])
consensus_paths = [p for p in inputs.consensus if p.endswith(".parquet")]
consensus = {Path(p).stem: pd.read_parquet(p) for p in consensus_paths}
agreement = pd.read_csv(next(p for p in inputs.consensus if p.endswith(".csv"))) if consensus else None

validation, metrics = None, None
if inputs.metrics:
    from imagecoding.report.validation import validation_view

    metrics = pd.read_csv(inputs.metrics)
    validation = validation_view(metrics, pd.read_csv(inputs.gold), inputs.confusion, merged,
                                 pd.read_csv(inputs.import_report))
learned = None
if inputs.learned:
    from imagecoding.report.learned import learned_view

    learned = learned_view(inputs.learned[0], metrics)

stability = None
if inputs.stability:
    from imagecoding.report.stability import stability_view

    stability = stability_view(pd.read_csv(inputs.stability[0]), config["stability"]["vote"], metrics)

from imagecoding.report.estimates import estimates_view

estimates = estimates_view(inputs.prevalence, inputs.estimates_summary)
from imagecoding.report.duplicates import duplicates_view

duplicates = duplicates_view(merged, config["posts"]["account_column"])
step_failures = {"clip_embed": shards[shards["status"] != "ok"]}
step_failures.update({f"signals_{name}": table[table["status"] != "ok"] for name, table in signals.items()})
settings = ReportSettings(account_column=config["posts"]["account_column"], **config["report"])
index = build_report(
    snakemake.output[0],
    manifest,
    merged,
    results,
    failure_table(manifest, step_failures),
    provenance,
    config["images"]["root"],
    settings,
    workers=snakemake.threads,
    frames=frames,
    signals=signals,
    ensemble=ensemble,
    consensus=consensus,
    agreement=agreement,
    validation=validation,
    learned=learned,
    estimates=estimates,
    multimodal=multimodal,
    routing=routing,
    stability=stability,
    duplicates=duplicates,
)
logging.info("report written to %s", index)
