"""Stability end to end: frame coding and the multimodal LLM asked again on the validation sample (repeats and a
prompt variant) against a test server that answers at random a known share of the time, the majority voted in."""

import os
from pathlib import Path

import pandas as pd
import pytest

from imagecoding.schemes import load_scheme
from imagecoding.tasks.codebook import load_codebook
from imagecoding.tasks.ensemble import scheme_codebook
from llm_server import FakeLLM
from workflow_helpers import REPO, prepare_workdir, snakemake, write_config

pytestmark = pytest.mark.workflow

REPEATS = 3
NOISE = 0.4


@pytest.fixture(scope="module")
def fake():
    previous = os.environ.get("E2E_STABILITY_KEY")
    os.environ["E2E_STABILITY_KEY"] = "sk-stability"  # inherited by the Snakemake subprocesses
    schemes = scheme_codebook([load_scheme("image_type", REPO / "config" / "schemes" / "image_types.yaml")], 200)
    server = FakeLLM(load_codebook(REPO / "config" / "codebook.yaml").json_schema(), schemes.json_schema(),
                     varied=True, noise=NOISE, noise_seed=3).start()
    yield server
    server.stop()
    if previous is None:
        os.environ.pop("E2E_STABILITY_KEY")


@pytest.fixture(scope="module")
def stable_run(tmp_path_factory, tiny_checkpoint, fake) -> Path:
    workdir = prepare_workdir(tmp_path_factory.mktemp("stability"))
    variant = workdir / "frames_terse.j2"
    own = (REPO / "config" / "prompts" / "frames.j2").read_text()
    variant.write_text("VARIANT-TERSE: code tersely.\n" + own)
    extra = {
        "frames": {"enabled": True},
        "multimodal": {"enabled": True},
        "validation": {"sample_size": 12, "min_per_category": 1},
        "duplicates": {"reuse_answers": False},  # the request counts below are per image, copies included
        "stability": {"enabled": True, "repeats": REPEATS, "prompt_variants": {"frames": [str(variant)]},
                      "vote": "majority", "bootstrap": 200},
        "llm": {"base_url": fake.base_url, "model": "test-vision", "api_key_env": "E2E_STABILITY_KEY",
                "prices": {"test-vision": {"input": 2.0, "output": 8.0}}, "backoff_base_s": 0.01, "temperature": 0.7},
    }
    write_config(workdir, tiny_checkpoint, extra=extra)
    snakemake(workdir)
    return workdir


def sampled(workdir: Path) -> set[str]:
    design = pd.read_parquet(workdir / "results" / "validation" / "design.parquet")
    return set(design.loc[design["round"] > 0, "image_id"])


def test_repeats_and_the_variant_are_real_requests_the_first_time_and_cached_after(stable_run, fake):
    frames = pd.read_parquet(stable_run / "results" / "llm" / "frames.parquet")
    images, sample = len(frames), len(sampled(stable_run) & set(frames["image_id"]))
    assert 2 <= sample < images
    # Each task's own answers, R - 1 more per sampled image, and the frames variant once per sampled image.
    print(f"\n{images} images coded, {sample} in the validation sample: {len(fake.log)} requests the first time")
    assert len(fake.log) == 2 * images + 2 * sample * (REPEATS - 1) + sample
    variant = [entry for entry in fake.log if "VARIANT-TERSE" in entry["text"]]
    assert len(variant) == sample and all(entry["jpeg"] for entry in variant)  # rendered, and sent with the image
    ledger = pd.read_csv(stable_run / "results" / "llm" / "cost.csv")
    assert (ledger["task"] == "frames_stability").sum() == sample * REPEATS  # 2 repeats and 1 variant
    before = len(fake.log)
    snakemake(stable_run, "--forcerun", "frames_code", "multimodal_classify")
    assert len(fake.log) == before  # a re-run pays nothing
    estimate = snakemake(stable_run, "llm_estimate").stdout
    assert "stability of frames (repeat_2, repeat_3, variant_1)" in estimate
    assert estimate.count("requests to make       0") == 4


def test_alpha_and_agreement_are_written_per_task_variable_and_kind(stable_run):
    metrics = pd.read_csv(stable_run / "results" / "stability" / "metrics.csv")
    assert list(metrics.columns[:8]) == ["task", "variable", "kind", "metric", "value", "ci_low", "ci_high", "n"]
    assert set(metrics["task"]) == {"frames", "multimodal"}
    assert set(metrics.loc[metrics["task"] == "frames", "kind"]) == {"repeat", "variant"}
    assert set(metrics.loc[metrics["task"] == "multimodal", "kind"]) == {"repeat"}
    assert (metrics["temperature"] == 0.7).all() and (metrics["model"] == "test-vision").all()
    alpha = metrics.query("task == 'multimodal' and metric == 'krippendorff_alpha'").iloc[0]
    assert alpha["value"] < 0.8  # 40% of the answers are drawn at random
    html = (stable_run / "results" / "report" / "index.html").read_text()
    sentence = next(line for line in html.splitlines() if "The multimodal LLM image_type agrees with itself" in line)
    print("\n" + sentence.replace("<p><strong>", "").replace("</strong></p>", ""))
    assert "The multimodal LLM image_type agrees with itself across 3 repeats" in html
    assert "Majority vote:" in html


def test_the_majority_is_the_code_downstream(stable_run):
    voted = pd.read_parquet(stable_run / "results" / "stability" / "frames.parquet").set_index("image_id")
    merged = pd.read_csv(stable_run / "results" / "merged.csv").drop_duplicates("image_id").set_index("image_id")
    variable = "Event_Occasion"
    shared = voted.index.intersection(merged.index)
    assert len(shared) == len(voted)
    assert (merged.loc[shared, variable] == voted.loc[shared, variable]).all()
    # The vote changed something: where the first answer lost, the majority is what merged.csv holds.
    lost = voted[voted[variable] != voted[f"{variable}__repeat_1"]]
    assert len(lost)
    mm = pd.read_parquet(stable_run / "results" / "stability" / "multimodal.parquet").set_index("image_id")
    consensus = pd.read_parquet(stable_run / "results" / "consensus" / "image_type.parquet").set_index("image_id")
    column = next(c for c in consensus.columns if c.startswith("multimodal"))
    assert (consensus.loc[mm.index, column] == mm["image_type"]).all()
