"""Frame coding end to end through Snakemake against the local OpenAI-compatible server."""

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from imagecoding.llm.task import ANSWERED
from imagecoding.tasks.codebook import load_codebook
from imagecoding.images import upload_jpeg
from llm_server import FakeLLM, payload_id
from workflow_helpers import REPO, SNAKEMAKE, planned_jobs, prepare_workdir, snakemake, write_config

pytestmark = pytest.mark.workflow

SECRET = "sk-e2e-secret-that-must-not-leak"
PRICE = {"input": 2.0, "output": 8.0}


@pytest.fixture(scope="module")
def fake():
    previous = os.environ.get("E2E_LLM_KEY")
    os.environ["E2E_LLM_KEY"] = SECRET  # inherited by the Snakemake subprocesses
    server = FakeLLM(load_codebook(REPO / "config" / "codebook.yaml").json_schema()).start()
    yield server
    server.stop()
    if previous is None:
        os.environ.pop("E2E_LLM_KEY")


def frames_settings(fake: FakeLLM, **llm) -> dict:
    return {
        "frames": {
            "enabled": True,
            "codebook": str(REPO / "config" / "codebook.yaml"),
            "prompt": str(REPO / "config" / "prompts" / "frames.j2"),
        },
        # These tests count one question per image (ledger, kills, retries); asking once per group of copies is
        # tested in test_frames.py::test_copies_reuse_their_groups_answer_and_are_not_asked.
        "duplicates": {"reuse_answers": False},
        "llm": {
            "base_url": fake.base_url,
            "model": "test-vision",
            "api_key_env": "E2E_LLM_KEY",
            "prices": {"test-vision": PRICE},
            "backoff_base_s": 0.01,
            "max_concurrency": 4,
            **llm,
        },
    }


def payload(workdir: Path, path: str) -> str:
    return payload_id(upload_jpeg(workdir / "images" / path, 512))


@pytest.fixture(scope="module")
def coded_run(tmp_path_factory, tiny_checkpoint, fake) -> Path:
    workdir = prepare_workdir(tmp_path_factory.mktemp("frames"))
    fake.plan(payload(workdir, "green_town/rally_0.jpg"), "429", "500")
    fake.plan(payload(workdir, "red_list/poster_2.jpg"), "malformed")
    fake.plan(payload(workdir, "blue_party/coffee.jpg"), "out_of_codebook")
    write_config(workdir, tiny_checkpoint, extra=frames_settings(fake))
    snakemake(workdir)
    return workdir


def test_frames_are_coded_merged_and_reported(coded_run, fake):
    frames = pd.read_parquet(coded_run / "results" / "llm" / "frames.parquet").set_index("image_id")
    manifest = pd.read_parquet(coded_run / "results" / "manifest.parquet")
    ok_ids = set(manifest.loc[manifest["status"] == "ok", "image_id"])
    assert set(frames.index) == ok_ids
    by_path = manifest.drop_duplicates("image_id").set_index("path")["image_id"]
    assert frames.loc[by_path["green_town/rally_0.jpg"], "status"] == "ok"  # survived 429 and 500
    assert frames.loc[by_path["red_list/poster_2.jpg"], "status"] == "unparseable"
    assert frames.loc[by_path["blue_party/coffee.jpg"], "status"] == "invalid"
    assert (frames["status"] == "ok").sum() == len(ok_ids) - 2
    assert not any(entry["problem"] for entry in fake.log)

    merged = pd.read_parquet(coded_run / "results" / "merged.parquet")
    assert {"Event_Occasion", "Appearance_RolledUpSleeves", "frames_status"} <= set(merged.columns)
    html = (coded_run / "results" / "report" / "index.html").read_text()
    assert "Frame coding (test-vision)" in html and "Spaceship" in html


def test_the_cost_ledger_adds_up(coded_run):
    frames = pd.read_parquet(coded_run / "results" / "llm" / "frames.parquet")
    ledger = pd.read_csv(coded_run / "results" / "llm" / "cost.csv")
    expected = (ledger["prompt_tokens"] * PRICE["input"] + ledger["completion_tokens"] * PRICE["output"]) / 1e6
    assert ledger["cost_usd"].to_numpy() == pytest.approx(expected.to_numpy())
    assert ledger["cost_usd"].sum() == pytest.approx(frames["cost_usd"].sum())
    assert len(ledger) == frames["status"].isin(ANSWERED).sum()


def test_the_key_is_in_no_file(coded_run):
    for path in coded_run.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_second_run_makes_zero_requests(coded_run, fake):
    assert planned_jobs(coded_run) == {}
    before = len(fake.log)
    snakemake(coded_run, "--forcerun", "frames_code")
    assert len(fake.log) == before
    log = (coded_run / "logs" / "llm" / "frames.log").read_text()
    assert "new for $0.0000" in log


def test_the_estimate_target_prints_requests_and_dollars(coded_run, fake):
    result = snakemake(coded_run, "frames_estimate")
    assert "requests to make       0" in result.stdout
    assert "expected cost          $0.0000" in result.stdout


def test_a_killed_run_loses_no_answer_and_asks_nothing_twice(coded_run, fake, tmp_path):
    workdir = tmp_path / "killed"
    shutil.copytree(coded_run, workdir, symlinks=True)
    for path in (workdir / "store").glob("llm.sqlite*"):
        path.unlink()  # no answers yet: start paying from zero
    shutil.rmtree(workdir / "results" / "llm")
    # As after a first run killed while coding: what reads the frames was never written either.
    for name in ("merged.parquet", "merged.csv"):
        (workdir / "results" / name).unlink()
    shutil.rmtree(workdir / "results" / "report")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["llm"]["max_concurrency"] = 2
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    fake.latency = 0.3
    first_request = len(fake.log)
    command = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(workdir / "config.yaml"), "--cores", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while len(fake.log) - first_request < 8 and time.time() < deadline:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)  # no chance to clean up: like a power cut or scancel
        process.wait(timeout=30)
    finally:
        fake.latency = 0.0
    killed_log = fake.log[first_request:]
    with sqlite3.connect(workdir / "store" / "llm.sqlite") as db:
        answered = {row[0] for row in db.execute("SELECT image_id FROM responses")}
    assert 4 <= len(answered) < 28  # some answers were committed before the kill, not all
    manifest = pd.read_parquet(workdir / "results" / "manifest.parquet")
    usable = manifest[manifest["status"] == "ok"].drop_duplicates("image_id")
    payloads = {payload(workdir, p): i for i, p in zip(usable["image_id"], usable["path"])}

    restart = len(fake.log)
    snakemake(workdir, "--unlock")
    snakemake(workdir)
    asked_again = {payloads[e["image"]] for e in fake.log[restart:]}
    assert not asked_again & answered  # nothing already answered is requested again
    assert asked_again | answered == set(usable["image_id"])
    frames = pd.read_parquet(workdir / "results" / "llm" / "frames.parquet")
    assert len(frames) == len(usable)
    assert frames["cached"].sum() == len(answered)
    assert len(killed_log) >= len(answered)
