"""The ensemble end to end through Snakemake: real Tesseract, a random detector, tiny CoCa, the local LLM server."""

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from imagecoding.schemes import load_scheme
from imagecoding.tasks.codebook import load_codebook
from imagecoding.tasks.ensemble import scheme_codebook
from llm_server import FakeLLM
from workflow_helpers import REPO, ensemble_settings, planned_jobs, prepare_workdir, snakemake, write_config

pytestmark = pytest.mark.workflow

INJECTED = "<script>alert('ocr')</script>"


@pytest.fixture(scope="module")
def fake():
    os.environ["E2E_ENSEMBLE_KEY"] = "sk-ensemble-e2e"
    schemes = scheme_codebook([load_scheme("image_type", REPO / "config" / "schemes" / "image_types.yaml")], 200)
    server = FakeLLM(schemes.json_schema(), load_codebook(REPO / "config" / "codebook.yaml").json_schema(),
                     text_only=("ensemble",), varied=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory, tiny_checkpoint, tiny_coca_checkpoint, fake) -> Path:
    workdir = prepare_workdir(tmp_path_factory.mktemp("ensemble"))
    posts = pd.read_csv(workdir / "posts.csv", keep_default_na=False)
    posts.loc[posts["post_id"] == "p001", "caption"] = INJECTED  # untrusted post text reaches prompt and report
    posts.to_csv(workdir / "posts.csv", index=False)
    write_config(workdir, tiny_checkpoint, extra=ensemble_settings(fake, tiny_coca_checkpoint))
    snakemake(workdir)
    return workdir


def test_every_signal_has_one_row_per_decodable_image(ensemble_run):
    manifest = pd.read_parquet(ensemble_run / "results" / "manifest.parquet")
    decodable = set(manifest.loc[manifest["status"] == "ok", "image_id"])
    for signal in ("ocr", "objects", "tags", "captions"):
        table = pd.read_parquet(ensemble_run / "results" / "signals" / f"{signal}.parquet")
        assert set(table["image_id"]) == decodable and table["image_id"].is_unique, signal
        assert (table["status"] == "ok").all(), table[table["status"] != "ok"]
    ocr = pd.read_parquet(ensemble_run / "results" / "signals" / "ocr.parquet").set_index("image_id")
    by_path = manifest.drop_duplicates("image_id").set_index("path")["image_id"]
    assert "BREAKING" in ocr.loc[by_path["red_list/studio_1.jpg"], "text"]  # Tesseract read the drawn news ticker
    for log in ("ocr", "objects", "captions"):
        assert "images/s" in (ensemble_run / "logs" / "signals" / f"{log}.log").read_text()


def test_the_ensemble_classifies_every_scheme_and_the_methods_are_compared(ensemble_run, fake):
    table = pd.read_parquet(ensemble_run / "results" / "ensemble" / "categories.parquet")
    categories = set(load_scheme("image_type", REPO / "config" / "schemes" / "image_types.yaml").categories)
    assert (table["status"] == "ok").all() and set(table["image_type"]) <= categories
    assert table["image_type_reason"].notna().all()
    ensemble_requests = [e for e in fake.log if e["schema"] == "ensemble"]
    assert ensemble_requests and not any(e["problem"] for e in fake.log)
    consensus = pd.read_parquet(ensemble_run / "results" / "consensus" / "image_type.parquet")
    assert {"clip", "ensemble", "frames", "majority", "methods", "agree", "split"} <= set(consensus.columns)
    agreement = pd.read_csv(ensemble_run / "results" / "consensus" / "agreement.csv")
    assert set(zip(agreement["method_a"], agreement["method_b"])) == {("clip", "ensemble"), ("clip", "frames"), ("ensemble", "frames")}
    ledger = pd.read_csv(ensemble_run / "results" / "llm" / "cost.csv")
    assert set(ledger["task"]) == {"frames", "ensemble"}
    assert ledger["cost_usd"].sum() == pytest.approx(table["cost_usd"].sum() + pd.read_parquet(
        ensemble_run / "results" / "llm" / "frames.parquet")["cost_usd"].sum())


def test_merged_output_gains_signals_ensemble_and_consensus(ensemble_run):
    merged = pd.read_parquet(ensemble_run / "results" / "merged.parquet")
    expected = {"ocr_text", "ocr_confidence", "objects_person_count", "objects_summary", "tags_summary", "captions_text",
                "ensemble_image_type", "ensemble_image_type_reason", "ensemble_status", "consensus_image_type",
                "consensus_image_type_agree", "consensus_image_type_split", "image_type", "Event_Occasion", "caption"}
    assert expected <= set(merged.columns)
    csv = pd.read_csv(ensemble_run / "results" / "merged.csv")
    assert len(csv) == len(merged)


def test_the_report_shows_signals_agreement_and_escapes_untrusted_text(ensemble_run):
    html = (ensemble_run / "results" / "report" / "index.html").read_text()
    for needle in ("Signals", "Ensemble classification", "Agreement between methods", "Images the methods disagree on",
                   "κ", "caption</b>", "ensemble image_type</b>"):
        assert needle in html, needle
    assert INJECTED not in html


def test_a_second_run_has_nothing_to_do_and_the_estimate_covers_both_tasks(ensemble_run, fake):
    assert planned_jobs(ensemble_run) == {}
    before = len(fake.log)
    result = snakemake(ensemble_run, "llm_estimate")
    assert "frames with test-model" in result.stdout and "ensemble with test-model" in result.stdout
    assert result.stdout.count("requests to make       0") == 2
    assert len(fake.log) == before


def signal_store_files(workdir: Path) -> dict[str, int]:
    root = workdir / "store" / "signals"
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_fast_modes_of_the_detector_and_coca_fill_stores_of_their_own(ensemble_run, tmp_path):
    workdir = tmp_path / "fast"
    shutil.copytree(ensemble_run, workdir, symlinks=True)
    before = signal_store_files(workdir)
    exact = pd.read_parquet(workdir / "results" / "signals" / "objects.parquet")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["signals"]["objects"].update(precision="int8", backend="openvino")
    config["signals"]["captions"]["precision"] = "int8"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    assert {"signals_objects", "signals_captions"} <= set(planned_jobs(workdir))
    snakemake(workdir, "results/signals/objects.parquet", "results/signals/captions.parquet")
    after = signal_store_files(workdir)
    assert {k: v for k, v in after.items() if k in before} == before  # fp32's stores are untouched
    assert {Path(k).parts[0] for k in set(after) - set(before)} - {"openvino"} == {"objects", "captions"}
    logs = workdir / "logs" / "signals"
    assert "(int8, openvino)" in (logs / "objects.log").read_text()
    assert "(int8)" in (logs / "captions.log").read_text()
    for signal in ("objects", "captions"):
        table = pd.read_parquet(workdir / "results" / "signals" / f"{signal}.parquet")
        assert (table["status"] == "ok").all() and len(table) == len(exact), signal


def test_signals_alone_need_no_llm(ensemble_run, tmp_path, fake):
    workdir = tmp_path / "signals-only"
    workdir.mkdir()
    for name in ("images", "posts.csv", "schemes"):
        (workdir / name).symlink_to(ensemble_run / name)
    config = yaml.safe_load((ensemble_run / "config.yaml").read_text())
    config["ensemble"] = {"enabled": True, "signals": ["ocr"], "classify": False}
    config["frames"] = {"enabled": False}
    config.pop("consensus")
    config["llm"].pop("api_key_env")  # no key is needed when nothing asks an LLM
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    jobs = planned_jobs(workdir)
    assert "signals_ocr" in jobs and not {"ensemble_classify", "consensus", "frames_code", "signals_objects"} & set(jobs)


def test_models_fetches_every_configured_model_or_says_how(ensemble_run, tmp_path):
    snakemake(ensemble_run, "models")  # local checkpoint and random detector: nothing to download
    config = yaml.safe_load((ensemble_run / "config.yaml").read_text())
    config["signals"]["objects"]["weights"] = "DEFAULT"
    config["models"] = {"cache_dir": str(tmp_path / "empty-cache")}
    (ensemble_run / "offline.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(ensemble_run, "models", "--configfile", str(ensemble_run / "offline.yaml"), check=False)
    assert result.returncode != 0
    assert "snakemake models" in result.stdout + result.stderr and "machine with internet" in result.stdout + result.stderr
