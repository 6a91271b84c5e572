"""After a complete run, each change of one setting re-runs the steps that use it, their dependants, and nothing else.

The run has everything a setting can reach: frame coding, every signal, the ensemble, a consensus
mapping and human codes. Each row changes one setting on a copy of that run and asks Snakemake, in a
dry run, which jobs it would run. Library code changes are rows too, on a copy of the workflow.
"""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from imagecoding.schemes import load_scheme
from imagecoding.tasks.codebook import load_codebook
from imagecoding.tasks.ensemble import scheme_codebook
from llm_server import FakeLLM
from workflow_helpers import REPO, SNAKEMAKE, ensemble_settings, planned_jobs, prepare_workdir, snakemake, write_config

pytestmark = pytest.mark.workflow

# The files steps read, copied into the study folder: a row may edit them, and a copy of the workflow
# (whose bundled files lie elsewhere) then sees the same settings.
STUDY_FILES = {
    "frames.codebook": "config/codebook.yaml",
    "frames.prompt": "config/prompts/frames.j2",
    "ensemble.prompt": "config/prompts/ensemble.j2",
    "signals.tags.vocabulary": "config/vocabulary.yaml",
    "signals.captions.prompt": "config/prompts/captions.j2",
    "multimodal.prompt": "config/prompts/multimodal.j2",
}

LLM_DOWNSTREAM = {"consensus", "llm_ledger", "validation_export", "validation_metrics", "estimates", "merge", "report"}
# Routing reads the cheap methods, the codes and their design: what it asks and decides feeds every method's reader.
MULTIMODAL_DOWNSTREAM = {"multimodal_classify"} | LLM_DOWNSTREAM
LEARNED_DOWNSTREAM = MULTIMODAL_DOWNSTREAM  # the learner is routing's cheap method, and feeds what zero-shot feeds
# The stratified design draws by zero-shot's category.
SCORES_DOWNSTREAM = {"validation_design"} | MULTIMODAL_DOWNSTREAM
# The sample's design weights the metrics, the estimates and routing's certificate, and the report shows them.
DESIGN_DOWNSTREAM = {"validation_design"} | MULTIMODAL_DOWNSTREAM


@pytest.fixture(scope="module")
def fake():
    os.environ["E2E_RERUN_KEY"] = "sk-rerun-e2e"
    schemes = scheme_codebook([load_scheme("image_type", REPO / "config" / "schemes" / "image_types.yaml")], 200)
    server = FakeLLM(schemes.json_schema(), load_codebook(REPO / "config" / "codebook.yaml").json_schema(),
                     text_only=("ensemble",)).start()
    yield server
    server.stop()


def gold_codes(workdir: Path) -> pd.DataFrame:
    """Two coders agreeing on a category for twelve images (ids are the files' SHA-256)."""
    categories = list(load_scheme("image_type", workdir / "schemes" / "image_types.yaml").categories)
    images = sorted((workdir / "images").rglob("*.jpg"))[:12]
    rows = []
    for number, image in enumerate(images):
        image_id = hashlib.sha256(image.read_bytes()).hexdigest()
        rows += [(image_id, coder, "image_type", categories[number % len(categories)]) for coder in ("ann", "bob")]
    return pd.DataFrame(rows, columns=["image_id", "coder", "variable", "value"])


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory, tiny_checkpoint, tiny_coca_checkpoint, fake) -> Path:
    workdir = prepare_workdir(tmp_path_factory.mktemp("reruns"))
    extra = ensemble_settings(fake, tiny_coca_checkpoint)
    extra["llm"]["api_key_env"] = "E2E_RERUN_KEY"
    for dotted, source in STUDY_FILES.items():
        shutil.copy(REPO / source, workdir / Path(source).name)
        *path, last = dotted.split(".")
        block = extra
        for part in path:
            block = block.setdefault(part, {})
        block[last] = Path(source).name
    gold_codes(workdir).to_csv(workdir / "gold.csv", index=False)
    extra["validation"] = {"sample_size": 12, "min_per_category": 1, "bootstrap": 20, "annotations": "gold.csv"}
    extra["route"] = {"enabled": True}
    write_config(workdir, tiny_checkpoint, extra=extra)
    snakemake(workdir)
    assert (workdir / "results" / "validation" / "metrics.csv").exists()
    return workdir


@pytest.fixture
def run_copy(complete_run, tmp_path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(complete_run, copy, symlinks=True)  # keeps mtimes, Snakemake's metadata and the stores
    return copy


def set_key(workdir: Path, dotted: str, value) -> None:
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    block = config
    *path, last = dotted.split(".")
    for part in path:
        block = block.setdefault(part, {})
    block[last] = value
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def append(workdir: Path, name: str, text: str) -> None:
    with open(workdir / name, "a") as handle:
        handle.write(text)


MAPPING = {"image_type": {"variable": "Event_Occasion", "values": {"CampaignEvent": "Political event"}}}

# (what changes, how, the jobs a dry run must plan: exactly these).
SETTINGS = [
    ("posts.account_column", lambda w: set_key(w, "posts.account_column", "post_id"), {"estimates", "report"}),
    ("posts.date_column", lambda w: set_key(w, "posts.date_column", None), {"estimates", "report"}),
    ("estimates.level", lambda w: set_key(w, "estimates.level", 0.9), {"estimates", "report"}),
    ("estimates.period", lambda w: set_key(w, "estimates.period", "week"), {"estimates", "report"}),
    ("estimates.unit", lambda w: set_key(w, "estimates.unit", "picture"), {"estimates", "report"}),
    # The groups feed the sample's design, the learner's folds, the picture unit and merged.csv.
    ("duplicates.max_block_distance", lambda w: set_key(w, "duplicates.max_block_distance", 0.5),
     {"duplicates", "learned_fit", "frames_code"} | DESIGN_DOWNSTREAM),
    ("duplicates.reuse_answers", lambda w: set_key(w, "duplicates.reuse_answers", False),
     {"frames_code"} | LLM_DOWNSTREAM),
    ("report.title", lambda w: set_key(w, "report.title", "Another title"), {"report"}),
    ("report.samples_per_category", lambda w: set_key(w, "report.samples_per_category", 2), {"report"}),
    ("clip.aggregate", lambda w: set_key(w, "clip.aggregate", "mean"), {"clip_score"} | SCORES_DOWNSTREAM),
    ("clip.top_k", lambda w: set_key(w, "clip.top_k", 2), {"clip_score", "learned_fit"} | SCORES_DOWNSTREAM),
    ("signals.ocr.languages", lambda w: set_key(w, "signals.ocr.languages", "eng"),
     {"signals_ocr", "ensemble_classify"} | LLM_DOWNSTREAM),
    ("signals.objects.min_score", lambda w: set_key(w, "signals.objects.min_score", 0.3),
     {"signals_objects", "ensemble_classify"} | LLM_DOWNSTREAM),
    ("signals.objects.precision", lambda w: set_key(w, "signals.objects.precision", "int8"),
     {"signals_objects", "ensemble_classify"} | LLM_DOWNSTREAM),
    ("signals.objects.backend", lambda w: set_key(w, "signals.objects.backend", "openvino"),
     {"signals_objects", "ensemble_classify"} | LLM_DOWNSTREAM),
    ("signals.captions.precision", lambda w: set_key(w, "signals.captions.precision", "int8"),
     {"signals_captions", "ensemble_classify"} | LLM_DOWNSTREAM),
    ("ensemble prompt edited", lambda w: append(w, "ensemble.j2", "\nAnswer carefully.\n"),
     {"ensemble_classify"} | LLM_DOWNSTREAM),
    ("codebook edited", lambda w: append(w, "codebook.yaml", "# a coder's note\n"),
     {"frames_code", "learned_fit"} | MULTIMODAL_DOWNSTREAM),
    ("frames prompt edited", lambda w: append(w, "frames.j2", "\nLook closely.\n"), {"frames_code"} | LLM_DOWNSTREAM),
    ("validation.sample_size", lambda w: set_key(w, "validation.sample_size", 10), DESIGN_DOWNSTREAM),
    ("validation.design", lambda w: set_key(w, "validation.design", "uncertainty"), DESIGN_DOWNSTREAM),
    ("validation.round", lambda w: set_key(w, "validation.round", 2), DESIGN_DOWNSTREAM),
    ("validation.seed", lambda w: set_key(w, "validation.seed", 2), DESIGN_DOWNSTREAM),
    ("validation.bootstrap", lambda w: set_key(w, "validation.bootstrap", 30), {"validation_metrics", "report"}),
    ("consensus.frames", lambda w: set_key(w, "consensus.frames", MAPPING),
     {"consensus", "validation_export", "validation_metrics", "estimates", "merge", "report"}),
    ("learned.min_per_class", lambda w: set_key(w, "learned.min_per_class", 2), {"learned_fit"} | LEARNED_DOWNSTREAM),
    ("learned.curve_repeats", lambda w: set_key(w, "learned.curve_repeats", 2), {"learned_fit"} | LEARNED_DOWNSTREAM),
    ("learned.enabled", lambda w: set_key(w, "learned.enabled", False), LEARNED_DOWNSTREAM),
    ("multimodal prompt edited", lambda w: append(w, "multimodal.j2", "\nLook closely.\n"), MULTIMODAL_DOWNSTREAM),
    ("multimodal.detail", lambda w: set_key(w, "multimodal.detail", "high"), MULTIMODAL_DOWNSTREAM),
    ("route.target_accuracy", lambda w: set_key(w, "route.target_accuracy", 0.8), MULTIMODAL_DOWNSTREAM),
    ("route.cheap", lambda w: set_key(w, "route.cheap", "clip"), MULTIMODAL_DOWNSTREAM),
    # Run-only settings: how fast, never what. None of them re-runs anything.
    ("clip.batch_size", lambda w: set_key(w, "clip.batch_size", 3), set()),
    ("clip.workers", lambda w: set_key(w, "clip.workers", 0), set()),
    ("clip.flush_every", lambda w: set_key(w, "clip.flush_every", 5), set()),
    ("llm.max_concurrency", lambda w: set_key(w, "llm.max_concurrency", 2), set()),
    ("llm.timeout_s", lambda w: set_key(w, "llm.timeout_s", 30), set()),
    ("signals.objects.batch_size", lambda w: set_key(w, "signals.objects.batch_size", 2), set()),
    ("signals.flush_every", lambda w: set_key(w, "signals.flush_every", 7), set()),
    ("signals.vision.max_concurrency", lambda w: set_key(w, "signals.vision.max_concurrency", 1), set()),
]


@pytest.mark.parametrize("change, apply, expected", SETTINGS, ids=[row[0] for row in SETTINGS])
def test_one_setting_reruns_its_steps_and_nothing_else(run_copy, change, apply, expected):
    apply(run_copy)
    planned = set(planned_jobs(run_copy)) - {"all"}
    assert planned == expected, change


def test_fewer_cores_rerun_nothing(run_copy):
    output = snakemake(run_copy, "--dry-run", "--cores", "1").stdout
    assert "Nothing to be done" in output


def workflow_copy(folder: Path) -> Path:
    """The workflow's own files, where a test may edit its library."""
    folder.mkdir()
    for name in ("Snakefile", "rules", "scripts", "config", "envs", "profiles", "report"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, folder / name)
    return folder


def planned_with(snakefile: Path, workdir: Path) -> set[str]:
    result = subprocess.run(
        [str(SNAKEMAKE), "--snakefile", str(snakefile), "--directory", str(workdir),
         "--configfile", str(workdir / "config.yaml"), "--cores", "2", "--dry-run"],
        capture_output=True, text=True, timeout=600, check=True,
    )
    if "Nothing to be done" in result.stdout:
        return set()
    table = result.stdout.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
    return {line.split()[0] for line in table} - {"all", "total"}


# (library module edited, the jobs a dry run must plan): its users and what depends on them.
CODE = [
    ("signals/ocr.py", {"signals_ocr", "ensemble_classify"} | LLM_DOWNSTREAM),
    ("clip/scoring.py", {"clip_score", "signals_tags", "ensemble_classify"} | SCORES_DOWNSTREAM | LLM_DOWNSTREAM),
    ("report/templates/report.html.j2", {"report"}),
    ("validation/sample.py", DESIGN_DOWNSTREAM),
    ("estimates/prevalence.py", {"estimates", "report"}),
    ("learn/curve.py", {"learned_fit"} | LEARNED_DOWNSTREAM),
    ("routing/curve.py", MULTIMODAL_DOWNSTREAM),
    ("tasks/multimodal.py", MULTIMODAL_DOWNSTREAM),
]


@pytest.mark.parametrize("module, expected", CODE, ids=[row[0] for row in CODE])
def test_a_library_change_reruns_the_steps_that_run_it(run_copy, tmp_path, module, expected):
    workflow = workflow_copy(tmp_path / "workflow")
    assert planned_with(workflow / "Snakefile", run_copy) == set()  # the copy itself changes nothing
    append(workflow / "scripts" / "imagecoding", module, "\n# behaviour changed here\nCHANGED = True\n")
    assert planned_with(workflow / "Snakefile", run_copy) == expected


def test_the_report_records_each_steps_code_key_and_settings(complete_run):
    import json

    provenance = json.loads((complete_run / "results" / "report" / "provenance.json").read_text())
    steps = provenance["steps"]
    assert {"manifest", "clip_embed", "clip_score", "frames_code", "signals_ocr", "ensemble_classify", "consensus",
            "validation_metrics", "merge", "report"} <= set(steps)
    assert all(len(step["code"]) == 16 for step in steps.values())
    assert steps["clip_score"]["settings"]["aggregate"] == "max"
    assert "batch_size" not in json.dumps(steps["clip_embed"])  # run-only settings are not provenance of results
    html = (complete_run / "results" / "report" / "index.html").read_text()
    assert steps["clip_embed"]["code"] in html
