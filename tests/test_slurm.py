"""The example through profiles/slurm on a real one-node SLURM cluster (tools/slurm-cluster.sh), against a local run.

Debian's SLURM 22.05 is installed where missing and its daemons are started by hand and stopped by
their PIDs. The LLM test server runs in this process; jobs reach it on 127.0.0.1.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from imagecoding.tasks.codebook import load_codebook
from llm_server import FakeLLM
from workflow_helpers import REPO, SNAKEMAKE, prepare_workdir, snakemake, write_config

pytestmark = [pytest.mark.slurm, pytest.mark.workflow,
              pytest.mark.needs_root("it installs Debian's SLURM where missing and starts slurmd, which runs as root")]

CLUSTER = REPO / "tools" / "slurm-cluster.sh"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(CLUSTER), "start", str(folder)], capture_output=True, text=True, timeout=900)
    if started.returncode != 0:
        pytest.fail(f"the test cluster did not start:\n{started.stdout}\n{started.stderr}")
    try:
        yield folder / "slurm.conf"
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop", str(folder)], timeout=60)


@pytest.fixture(scope="module")
def fake():
    os.environ["SLURM_TEST_LLM_KEY"] = "sk-slurm-test"
    server = FakeLLM(load_codebook(REPO / "config" / "codebook.yaml").json_schema()).start()
    yield server
    server.stop()


def study(workdir: Path, checkpoint: Path, fake: FakeLLM) -> Path:
    prepare_workdir(workdir)
    write_config(workdir, checkpoint, extra={
        "frames": {"enabled": True},
        "llm": {"base_url": fake.base_url, "model": "test-model", "api_key_env": "SLURM_TEST_LLM_KEY",
                "backoff_base_s": 0.01, "max_concurrency": 4, "prices": {"test-model": {"input": 1.0, "output": 4.0}}},
    })
    return workdir


def on_slurm(workdir: Path, conf: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, SLURM_CONF=str(conf), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    command = [
        "timeout", "-s", "KILL", "900", str(SNAKEMAKE),
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(workdir / "config.yaml"),
        "--profile", str(REPO / "profiles" / "slurm"),
        "--slurm-no-account", "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "5", "--retries", "0",
        *args,
    ]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=960)
    return result, time.perf_counter() - started


def steps_done(output: str) -> int:
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", output)
    return int(done[-1][1]) if done else 0


def test_the_example_runs_on_slurm_and_equals_a_local_run(cluster, fake, tmp_path, tiny_checkpoint):
    local = study(tmp_path / "local", tiny_checkpoint, fake)
    started = time.perf_counter()
    local_run = snakemake(local)
    local_seconds = time.perf_counter() - started
    remote = study(tmp_path / "slurm", tiny_checkpoint, fake)
    result, seconds = on_slurm(remote, cluster)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    submitted = len(re.findall(r"has been submitted with SLURM jobid", output))
    print(f"\nlocal: {steps_done(local_run.stdout + local_run.stderr)} jobs in {local_seconds:.0f} s; "
          f"SLURM: {steps_done(output)} jobs ({submitted} submitted through sbatch) in {seconds:.0f} s")
    assert submitted >= 5  # manifest, embedding, scoring, frames, merge, report... went through sbatch

    for table in ("clip/image_type.parquet", "llm/frames.parquet", "manifest.parquet"):
        mine = pd.read_parquet(local / "results" / table)
        theirs = pd.read_parquet(remote / "results" / table)
        keep = [c for c in mine.columns if c not in ("mtime_ns", "cached", "raw", "latency_s")]
        key = "path" if "path" in mine.columns else "image_id"
        pd.testing.assert_frame_equal(mine[keep].sort_values(key).reset_index(drop=True),
                                      theirs[keep].sort_values(key).reset_index(drop=True), check_exact=False, atol=1e-4)
    assert (remote / "results" / "report" / "index.html").exists()


def test_a_failing_job_is_reported_as_failed_with_its_log(cluster, fake, tmp_path, tiny_checkpoint):
    workdir = study(tmp_path / "failing", tiny_checkpoint, fake)
    fake.plan_text("", *["401"] * 50)  # the provider rejects the key: frames_code must fail, loudly
    try:
        result, _ = on_slurm(workdir, cluster, "results/llm/frames.parquet")
    finally:
        fake.text_script.clear()
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error in rule frames_code" in output
    assert "rejected" in output  # the job's own log, shown by --show-failed-logs, says why
    assert not (workdir / "results" / "llm" / "frames.parquet").exists()
    kept = list((workdir / ".snakemake" / "slurm_logs" / "rule_frames_code").rglob("*.log"))
    assert len(kept) == 1 and "Error in rule frames_code" in kept[0].read_text()  # the failed job's SLURM log stays
    assert "rejected" in (workdir / "logs" / "llm" / "frames.log").read_text()  # and the rule's own log says why
