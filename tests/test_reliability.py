"""Promises of docs/RELIABILITY.md not covered elsewhere: one cache shared by concurrent runs, and writes that fail."""

import errno
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from snakemake.utils import validate

from conftest import gps_photos
from imagecoding.response_cache import ResponseCache
from imagecoding.outputs import OutputError, atomic_directory, write_csv, write_parquet
from imagecoding.store import PartStore
from imagecoding.tasks.codebook import load_codebook
from llm_server import FakeLLM

REPO = Path(__file__).resolve().parent.parent
CODEBOOK = REPO / "config" / "codebook.yaml"


def frames_config(tmp_path, root, fake) -> dict:
    config = {
        "images": {"root": str(root)},
        "frames": {"enabled": True, "codebook": str(CODEBOOK), "prompt": str(REPO / "config" / "prompts" / "frames.j2")},
        "llm": {"base_url": fake.base_url, "model": "test-vision", "api_key_env": "TEST_LLM_KEY",
                "prices": {"test-vision": {"input": 1.0, "output": 2.0}}, "cache": str(tmp_path / "shared.sqlite"),
                "max_concurrency": 3, "backoff_base_s": 0.01, "timeout_s": 5, "max_retries": 1},
    }
    validate(config, str(REPO / "config" / "schema" / "config.schema.yaml"), set_default=True)
    return config


RUNNER = """
import json, sys, pandas as pd
sys.path[:0] = [{scripts!r}, {tests!r}]
from imagecoding.tasks.frames import frames_run
config = json.load(open({config!r}))
table = frames_run(config, pd.read_parquet({manifest!r})).execute()
print(json.dumps({{"ok": int((table["status"] == "ok").sum()), "cached": int(table["cached"].sum())}}))
"""


def test_two_runs_sharing_one_cache_never_pay_twice(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "sk-shared")
    root = tmp_path / "images"
    paths = gps_photos(root, 12, seed=21, size=(60, 80))
    manifest = pd.DataFrame({"image_id": [f"{i:064x}" for i in range(12)], "path": [p.name for p in paths], "status": "ok"})
    manifest.to_parquet(tmp_path / "manifest.parquet")
    fake = FakeLLM(load_codebook(CODEBOOK).json_schema(), latency=0.3).start()
    try:
        (tmp_path / "config.json").write_text(json.dumps(frames_config(tmp_path, root, fake)))
        script = RUNNER.format(scripts=str(REPO / "scripts"), tests=str(REPO / "tests"), config=str(tmp_path / "config.json"),
                               manifest=str(tmp_path / "manifest.parquet"))
        runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
        results = [json.loads(run.communicate(timeout=120)[0].strip().splitlines()[-1]) for run in runs]
    finally:
        fake.stop()
    assert [r["ok"] for r in results] == [12, 12]  # both runs have every answer
    assert len(fake.log) == 12  # and each request was paid once: 24 before claims
    assert sorted(r["cached"] for r in results)[1] > 0  # one run waited for answers the other fetched
    with sqlite3.connect(tmp_path / "shared.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # answered claims are cleared


def test_a_crashed_claimants_lease_expires_and_a_live_one_is_waited_for(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    other = ResponseCache(tmp_path / "cache.sqlite")
    assert other.claim("k1", lease_seconds=60)
    assert not cache.claim("k1", lease_seconds=60)  # held by a live run
    assert other.claim("k2", lease_seconds=0.01)
    time.sleep(0.02)  # the claimant crashed: its short lease lapses
    assert cache.claim("k2", lease_seconds=60)
    other.put("k1", "m", "frames", "img", "sync", {"choices": []}, 1, 1, 0.1)
    assert not cache.claim("k1", lease_seconds=60)  # answered: nothing to claim
    cache.release("k2")
    assert other.claim("k2", lease_seconds=60)


@pytest.mark.parametrize("writer", ["parquet", "csv", "store", "report"])
def test_a_failing_write_leaves_no_half_file_and_names_the_file(tmp_path, monkeypatch, writer):
    target = tmp_path / "results" / {"parquet": "table.parquet", "csv": "ledger.csv", "store": "store", "report": "report"}[writer]
    if writer == "report":
        target.mkdir(parents=True)
        (target / "index.html").write_text("the previous report")
    real_replace = os.replace

    def full_disk(source, destination):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    frame = pd.DataFrame({"image_id": ["a"], "value": [1]})
    with pytest.raises(OutputError) as raised:
        if writer == "parquet":
            write_parquet(frame, target)
        elif writer == "csv":
            write_csv(frame, target)
        elif writer == "store":
            import pyarrow as pa

            PartStore(target).write(pa.table({"image_id": ["a"]}))
        else:
            with atomic_directory(target) as folder:
                (folder / "index.html").write_text("a new report")
    monkeypatch.setattr(os, "replace", real_replace)
    message = str(raised.value)
    assert "No space left on device" in message and "Free disk space" in message
    assert str(target if writer != "store" else target) in message or target.name in message
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".") and p.name.endswith((".tmp", ".old"))]
    assert leftovers == []
    if writer == "report":
        assert (target / "index.html").read_text() == "the previous report"  # the old report stays whole
    elif writer != "store":
        assert not target.exists()


def test_a_full_cache_stops_the_run_and_keeps_every_stored_answer(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    cache.put("kept", "m", "frames", "img", "sync", {"choices": []}, 1, 1, 0.1)
    cache._db.execute("PRAGMA max_page_count = 1")  # the database may not grow: as on a full disk
    with pytest.raises(OutputError, match="llm.cache.*stops here so it pays for no answer it cannot keep"):
        cache.put("new", "m", "frames", "img", "sync", {"choices": [], "padding": "x" * 100_000}, 1, 1, 0.1)
    assert set(ResponseCache(tmp_path / "cache.sqlite").get_many(["kept", "new"])) == {"kept"}
