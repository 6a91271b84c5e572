import os
from pathlib import Path
import sys

from snakemake.utils import validate

sys.path.insert(0, os.path.join(workflow.basedir, "scripts"))

from imagecoding.config import (
    check_config,
    check_schema,
    check_study,
    pick,
    resolve_bundled_files,
    resolve_stores,
    without,
)
from imagecoding.invocation import run_census
from imagecoding.plan import VARIABLE_KEYS, study_plan
from imagecoding.store_root import move_old_stores, stores_in_results
from imagecoding.tuning import as_resources

# Start-up checks (files, Tesseract, API keys) run once, in the main process; every cluster job parses
# this file again and reads what the main process computed instead (imagecoding/invocation.py).
MAIN_PROCESS = workflow.is_main_process
check_study(config)
if MAIN_PROCESS:
    check_schema(
        config, os.path.join(workflow.basedir, "config/schema/config.schema.yaml")
    )
validate(config, schema="../config/schema/config.schema.yaml", set_default=True)
resolve_bundled_files(config, workflow.basedir)
DEFAULT_STORES = resolve_stores(config)
if MAIN_PROCESS:
    check_config(
        config, uses_conda=bool(workflow.deployment_settings.deployment_method)
    )
    # Before any job opens a store: a study from before store.root keeps its stores (docs/RELIABILITY.md).
    move_old_stores(config, DEFAULT_STORES)
    for warning in stores_in_results(config):
        print(warning, file=sys.stderr)
CENSUS = run_census(config, os.path.join(workflow.basedir, "scripts"), MAIN_PROCESS)

# What runs (schemes, methods, signals, LLM tasks, the steps the report reads), decided once from the
# configuration: the rules below read it, and the library reads its methods (imagecoding/plan.py).
PLAN = study_plan(config)


wildcard_constraints:
    scheme="|".join(PLAN.schemes),
    shard=r"\d+-of-\d+",


def settings(*keys):
    """A rule's settings: exactly the config keys (dotted) its step reads, so only they re-run it."""
    return pick(config, *keys)


def code(script):
    """The key of the library code an entry script runs: a changed module re-runs its steps."""
    return CENSUS["code"][script]


def shards():
    """Embedding jobs: clip.shards, or as many as clip.shard_size asks for (counted by the main process)."""
    return [f"{i}-of-{CENSUS['shards']}" for i in range(CENSUS["shards"])]


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
    images = CENSUS["images"] / shards
    rate = gpu if device == "cuda" else cpu * processes
    return max(30, round(2 * images / rate / 60))


def llm_minutes():
    """LLM jobs: a request takes about 2 s, llm.max_concurrency in flight."""
    per_second = config["llm"]["max_concurrency"] / 2
    return max(30, round(2 * CENSUS["images"] / per_second / 60))


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
        "backend": clip["backend"],
        "key": "clip",
    }


PROBES_PRECISION = config["clip"]["precision"] == "auto"


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
        "backend": "torch",
        "key": "signals.captions",
    }


# How fast requests go, not what they answer: these travel as resources (llm_tuning).
LLM_RUN_ONLY = (
    "max_concurrency",
    "max_retries",
    "backoff_base_s",
    "backoff_cap_s",
    "timeout_s",
)


def llm_params():
    """LLM settings that shape answers and costs; changing them re-runs the LLM rules (the cache still answers)."""
    llm = without(config["llm"], *LLM_RUN_ONLY)
    llm["batch"] = without(llm["batch"], "poll_seconds")
    return llm


def llm_tuning():
    """The LLM's run-only settings as resources; `llm` is also the run's global request budget."""
    llm = config["llm"]
    return as_resources(
        llm=llm["max_concurrency"],
        llm_concurrency=llm["max_concurrency"],
        llm_retry=[llm[k] for k in LLM_RUN_ONLY[1:]] + [llm["batch"]["poll_seconds"]],
    )


# How a model step runs, not what it writes: these travel as resources.
MODEL_RUN_ONLY = ("device", "batch_size", "workers")


def signal_tuning(block=None):
    """A signal step's run-only settings (flushes, and a model's device, batch and workers) as resources."""
    flushes = pick(config["signals"], "flush_every", "flush_seconds")
    return as_resources(**flushes, **(pick(block, *MODEL_RUN_ONLY) if block else {}))


def image_settings():
    return ("images.root", "images.max_pixels")


def post_settings():
    """What selecting and filtering images by their posts reads."""
    return (
        "posts.path",
        "posts.image_column",
        "posts.id_column",
        "posts.image_separator",
    )


def ensemble_settings():
    """The ensemble reads the scheme files and, when asked to, each post's account."""
    account = ["posts.account_column"] if config["ensemble"]["include_account"] else []
    return settings(
        "ensemble",
        "clip.schemes",
        *image_settings(),
        *post_settings(),
        *account,
        *stability_settings("ensemble"),
    )


def estimate_settings():
    """llm_estimate prices what frames_code, ensemble_classify, multimodal_classify (routed or not) and LLM
    captions would ask."""
    return pick(
        config,
        "frames",
        "duplicates.reuse_answers",
        "ensemble",
        "multimodal",
        "route",
        "clip.schemes",
        "signals.captions",
        "posts.account_column",
        *image_settings(),
        *post_settings(),
        *coder_settings(),
        "validation.annotations",
        "stability",
    )


def duplicate_settings():
    """What finding the groups reads: not reuse_answers, which only the LLM tasks read."""
    return tuple(
        f"duplicates.{key}"
        for key in (
            "enabled",
            "max_hash_distance",
            "window",
            "max_block_distance",
            "max_colour_distance",
            "crops",
            "max_group_size",
        )
    )


def coder_settings():
    """How the human codes become one gold standard (validation/annotations.py study_gold)."""
    return ("validation.adjudicator", "validation.coders", "validation.check_coder")


UNCERTAINTY_DESIGN = config["validation"]["design"] == "uncertainty"


def design_settings():
    """What the validation sample's design reads (validation/sample.py study_design)."""
    return (
        "clip.schemes",
        "validation.scheme",
        "validation.design",
        "validation.round",
        "validation.uniform_share",
        "validation.sample_size",
        "validation.min_per_category",
        "validation.seed",
    )


def variable_settings():
    """What the list of coded variables (schemes, codebook, which methods) depends on: a step given these
    settings rebuilds the plan's methods from them (imagecoding/plan.py methods_of)."""
    return VARIABLE_KEYS


def frame_results():
    return ["results/llm/frames.parquet"] if PLAN.methods.frames else []


def signal_results():
    return expand("results/signals/{signal}.parquet", signal=PLAN.signals)


def ensemble_results():
    return ["results/ensemble/categories.parquet"] if PLAN.methods.ensemble else []


def learned_results():
    return ["results/learned"] if PLAN.methods.learned else []


def multimodal_results():
    return ["results/llm/multimodal.parquet"] if PLAN.methods.multimodal else []


def routing_results():
    return ["results/routing"] if PLAN.methods.routed else []


def multimodal_outputs():
    """The LLM's answers and its ledger; with routing also the routed codes, the curves and the summary."""
    found = {
        "table": "results/llm/multimodal.parquet",
        "ledger": "results/llm/cost/multimodal.csv",
    }
    return found | (
        {"routing": directory("results/routing")} if PLAN.methods.routed else {}
    )


def routing_inputs():
    """What routing reads beside the images: the cheap methods, the human codes and the design that weights them."""
    if not PLAN.methods.routed:
        return {}
    return {
        "scores": expand("results/clip/{scheme}.parquet", scheme=PLAN.schemes),
        "learned": learned_results(),
        "annotations": list(PLAN.annotations),
        "design": "results/validation/design.parquet",
    }


def multimodal_settings():
    """The task's settings; with routing also what reading the codes and the cheap methods takes."""
    keys = ["multimodal", "route", "clip.schemes", *image_settings(), *post_settings()]
    keys += stability_settings("multimodal")
    if PLAN.methods.routed:
        keys += [*coder_settings(), "validation.annotations"]
    return settings(*keys)


def consensus_results():
    if not PLAN.methods.consensus:
        return []
    return expand("results/consensus/{scheme}.parquet", scheme=PLAN.schemes) + [
        "results/consensus/agreement.csv"
    ]


def method_results(wildcards):
    """What both validation rules read: the manifest, the schemes and every method's codes."""
    return {
        "manifest": "results/manifest.parquet",
        "scores": expand("results/clip/{scheme}.parquet", scheme=PLAN.schemes),
        "schemes": [config["clip"]["schemes"][s] for s in PLAN.schemes],
        "codebook": ([config["frames"]["codebook"]] if PLAN.methods.frames else []),
        "frames": frame_results(),
        "ensemble": ensemble_results(),
        "learned": learned_results(),
        "multimodal": multimodal_results(),
        "routing": routing_results(),
        "consensus": consensus_results(),
    }


def validation_results():
    """What validation_metrics writes for the report, by name; each empty without human codes."""
    found = {
        "metrics": "results/validation/metrics.csv",
        "gold": "results/validation/gold.csv",
        "import_report": "results/validation/import_report.csv",
        "confusion": "results/validation/confusion",
    }
    return {name: path if PLAN.annotations else [] for name, path in found.items()}


def ledger_results():
    return ["results/llm/cost.csv"] if PLAN.llm_tasks else []


def caption_inputs(wildcards):
    inputs = {"manifest": "results/manifest.parquet"}
    if not PLAN.captions_by_llm:
        inputs["weights"] = "results/signals/captions_weights.json"
    return inputs


def model_weights():
    """The weights every model step reads: CLIP's, and those of the signals' models."""
    return ["results/clip/weights.json"] + [
        f"results/signals/{step}.json" for step in PLAN.weight_steps
    ]


def scheme_file(wildcards):
    return config["clip"]["schemes"][wildcards.scheme]


def report_steps():
    """Each step whose results the report reads, directly or not: its settings and its code key.

    They are the report's provenance, and its params: a step whose settings changed re-runs anyway,
    so the report re-runs with it and never for a step it does not read. Which steps: PLAN.report_steps.
    """
    found = {}
    for name in PLAN.report_steps:
        proxy = getattr(rules, name)
        params = dict(proxy.params.items())
        found[name] = {
            "code": params.pop("code", None),
            "settings": params,
            # Where its jobs recorded what they ran with (job_log.log_to), and the env file they ran in.
            "env": f"envs/{Path(str(proxy.rule.conda_env)).name}",
            "logs": [str(path) for path in proxy.rule.log],
        }
    return found


# Stability: the coding LLM tasks asked again (repeats, prompt variants) inside their own rules, so that
# stability.vote: majority reaches everything downstream of the task's table (imagecoding/stability/).
def stability_outputs(task):
    """A task's per-image majority and its figures, when it is asked again."""
    if task not in PLAN.stability:
        return {}
    return {
        "stability": f"results/stability/{task}.parquet",
        "stability_metrics": f"results/stability/{task}_metrics.csv",
    }


def stability_inputs(task):
    """The validation sample's design: the images asked again unless stability.sample_size names a number."""
    if task not in PLAN.stability or config["stability"]["sample_size"] is not None:
        return {}
    return {"stability_design": "results/validation/design.parquet"}


def stability_settings(task):
    """The stability block for a task asked again (its variants are its prompts too); nothing otherwise, so
    switching stability on or off re-runs only the tasks it asks."""
    return ("stability",) if task in PLAN.stability else ()


def stability_estimate_inputs():
    """llm_estimate prices the repeats and variants on the validation sample when that is what they ask about."""
    found = {}
    for task in PLAN.stability:
        found |= stability_inputs(task)
    return found


def stability_report_settings():
    """The report says which code the tasks used downstream (stability.vote) when they were asked again."""
    return ("stability",) if PLAN.stability else ()


def stability_results():
    return ["results/stability/metrics.csv"] if PLAN.stability else []
