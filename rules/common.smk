import os
import sys
from functools import cache

from snakemake.utils import validate

sys.path.insert(0, os.path.join(workflow.basedir, "scripts"))

from imagecoding.config import (
    annotation_files,
    check_config,
    check_schema,
    check_study,
    resolve_bundled_files,
)
from imagecoding.clip.embeddings import shard_count
from imagecoding.manifest import configured_listing, listing_fingerprint

check_study(config)
check_schema(config, os.path.join(workflow.basedir, "config/schema/config.schema.yaml"))
validate(config, schema="../config/schema/config.schema.yaml", set_default=True)
resolve_bundled_files(config, workflow.basedir)
check_config(config, uses_conda=bool(workflow.deployment_settings.deployment_method))

SCHEMES = sorted(config["clip"]["schemes"])
ENSEMBLE = config["ensemble"]
SIGNALS = ENSEMBLE["signals"] if ENSEMBLE["enabled"] else []
CLASSIFY = ENSEMBLE["enabled"] and ENSEMBLE["classify"]
CAPTIONS_BY_LLM = config["signals"]["captions"]["method"] == "llm"
LLM_TASKS = (
    (["frames"] if config["frames"]["enabled"] else [])
    + (["ensemble"] if CLASSIFY else [])
    + (["captions"] if "captions" in SIGNALS and CAPTIONS_BY_LLM else [])
)
ANNOTATIONS = annotation_files(config)
MAPPED_FRAMES = [
    s for s in config["consensus"]["frames"] if config["frames"]["enabled"]
]
CONSENSUS = CLASSIFY or bool(MAPPED_FRAMES)


wildcard_constraints:
    scheme="|".join(SCHEMES),
    shard=r"\d+-of-\d+",


@cache
def scanned_images():
    """The paths the manifest covers and the root's scan: listed once per invocation."""
    return configured_listing(config)


def image_paths():
    return scanned_images()[0]


@cache
def image_listing():
    """Which image files exist, with sizes and mtimes; re-runs the manifest when it changes."""
    images = config["images"]
    paths, scanned = scanned_images()
    return listing_fingerprint(paths, images["root"], images["extra_roots"], scanned)


def shards():
    """Embedding jobs: clip.shards, or as many as clip.shard_size asks for (listing once)."""
    size = config["clip"]["shard_size"]
    count = shard_count(len(image_paths()), size) if size else config["clip"]["shards"]
    return [f"{i}-of-{count}" for i in range(count)]


SHARDS = shards()

# Images per second measured on two CPU cores (docs/benchmarks.md) and, cautiously, on one GPU.
IMAGES_PER_SECOND = {
    "clip": (15, 300),
    "objects": (8, 100),
    "captions": (1, 30),
    "ocr": (3, 3),
}


def runtime_minutes(step, device="cpu", shards=1, processes=1):
    """Minutes a job may run (the cluster's time limit): twice the expected time at the measured
    rate, at least 30; on a laptop it only orders jobs. A job killed at its limit keeps its commits.
    """
    cpu, gpu = IMAGES_PER_SECOND[step]
    images = len(image_paths()) / shards
    rate = gpu if device == "cuda" else cpu * processes
    return max(30, round(2 * images / rate / 60))


def llm_minutes():
    """LLM jobs: a request takes about 2 s, llm.max_concurrency in flight."""
    per_second = config["llm"]["max_concurrency"] / 2
    return max(30, round(2 * len(image_paths()) / per_second / 60))


def gpus(device):
    """One GPU through the SLURM plugin's own resource when the step's device is cuda; none otherwise."""
    return 1 if device == "cuda" else 0


def posts_table(wildcards):
    return [config["posts"]["path"]] if config["posts"]["path"] else []


def clip_model_params():
    clip = config["clip"]
    return {
        "model": clip["model"],
        "pretrained": clip["pretrained"],
        "model_config": clip["model_config"],
        "draft": clip["draft"],
        "precision": clip["precision"],
        "key": "clip",
    }


def embedding_threads():
    """Decoding workers plus the model; left to us, the whole machine (the model takes what decoding leaves)."""
    workers = config["clip"]["workers"]
    return workers + 1 if workers is not None else workflow.cores


def captions_model_params():
    captions = config["signals"]["captions"]
    return {
        "model": captions["model"],
        "pretrained": captions["pretrained"],
        "model_config": captions["model_config"],
        "draft": True,
        "precision": "fp32",
        "key": "signals.captions",
    }


def llm_params():
    """LLM settings that shape answers and costs; changing them re-runs the LLM rules (the cache still answers)."""
    return {key: value for key, value in config["llm"].items()}


def frame_results():
    return ["results/llm/frames.parquet"] if config["frames"]["enabled"] else []


def signal_results():
    return expand("results/signals/{signal}.parquet", signal=SIGNALS)


def ensemble_results():
    return ["results/ensemble/categories.parquet"] if CLASSIFY else []


def consensus_results():
    if not CONSENSUS:
        return []
    return expand("results/consensus/{scheme}.parquet", scheme=SCHEMES) + [
        "results/consensus/agreement.csv"
    ]


def method_results(wildcards):
    """What both validation rules read: the manifest, the schemes and every method's codes."""
    return {
        "manifest": "results/manifest.parquet",
        "scores": expand("results/clip/{scheme}.parquet", scheme=SCHEMES),
        "schemes": [config["clip"]["schemes"][s] for s in SCHEMES],
        "frames": frame_results(),
        "ensemble": ensemble_results(),
        "consensus": consensus_results(),
    }


def validation_results():
    if not ANNOTATIONS:
        return []
    return [
        "results/validation/metrics.csv",
        "results/validation/gold.csv",
        "results/validation/import_report.csv",
        "results/validation/confusion",
    ]


def ledger_results():
    return ["results/llm/cost.csv"] if LLM_TASKS else []


def caption_inputs(wildcards):
    inputs = {"manifest": "results/manifest.parquet"}
    if not CAPTIONS_BY_LLM:
        inputs["weights"] = "results/signals/captions_weights.json"
    return inputs


def model_weights():
    weights = ["results/clip/weights.json"]
    if "objects" in SIGNALS:
        weights.append("results/signals/objects_weights.json")
    if "captions" in SIGNALS and not CAPTIONS_BY_LLM:
        weights.append("results/signals/captions_weights.json")
    return weights


def scheme_file(wildcards):
    return config["clip"]["schemes"][wildcards.scheme]
