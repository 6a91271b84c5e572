"""Frame-coding throughput against the local test server with a fixed answer latency, side by side.

Codes the same images at each concurrency with a fresh cache, then once more with a warm cache
(which must send nothing). Prints a table and the command that made it.

    .venv/bin/python bench/llm_throughput.py [--images 200] [--latency 0.3] [--concurrency 1,8]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests")]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402
from snakemake.utils import validate  # noqa: E402

from imagecoding.tasks.codebook import load_codebook  # noqa: E402
from imagecoding.tasks.frames import frames_run  # noqa: E402
from llm_server import FakeLLM  # noqa: E402

CODEBOOK = REPO / "config" / "codebook.yaml"


def make_images(root: Path, count: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for index in range(count):
        path = root / f"img{index:04d}.jpg"
        Image.fromarray((rng.random((96, 128, 3)) * 255).astype("uint8")).save(path)
        rows.append({"image_id": f"{index:064x}", "path": path.name, "status": "ok"})
    return pd.DataFrame(rows)


def config_for(root: Path, fake: FakeLLM, cache: Path, concurrency: int) -> dict:
    config = {
        "images": {"root": str(root)},
        "frames": {"enabled": True, "codebook": str(CODEBOOK), "prompt": str(REPO / "config/prompts/frames.j2")},
        "llm": {
            "base_url": fake.base_url,
            "model": "bench-vision",
            "api_key_env": "BENCH_UNUSED_KEY",
            "prices": {"bench-vision": {"input": 0.15, "output": 0.60}},
            "cache": str(cache),
            "max_concurrency": concurrency,
        },
    }
    validate(config, str(REPO / "config" / "schema" / "config.schema.yaml"), set_default=True)
    return config


def timed(config: dict, manifest: pd.DataFrame, fake: FakeLLM) -> tuple[float, int, int]:
    before = len(fake.log)
    started = time.perf_counter()
    table = frames_run(config, manifest).execute()
    elapsed = time.perf_counter() - started
    return elapsed, len(fake.log) - before, int((table["status"] == "ok").sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--concurrency", default="1,8")
    args = parser.parse_args()

    fake = FakeLLM(load_codebook(CODEBOOK).json_schema(), latency=args.latency).start()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "images"
        root.mkdir()
        manifest = make_images(root, args.images)
        levels = [int(c) for c in args.concurrency.split(",")]
        for concurrency in levels:
            cache = Path(scratch) / f"cache-{concurrency}.sqlite"
            elapsed, sent, ok = timed(config_for(root, fake, cache, concurrency), manifest, fake)
            rows.append((f"cold cache, concurrency {concurrency}", elapsed, sent, ok))
        elapsed, sent, ok = timed(config_for(root, fake, cache, levels[-1]), manifest, fake)
        rows.append((f"warm cache (re-run), concurrency {levels[-1]}", elapsed, sent, ok))
    fake.stop()

    base = rows[0][2] / rows[0][1]
    print(f"{args.images} images, test server latency {args.latency * 1000:.0f} ms per answer, {os.cpu_count()} cores")
    print("| run | seconds | requests sent | requests/s | speed-up | coded ok |")
    print("|---|---|---|---|---|---|")
    for name, elapsed, sent, ok in rows:
        rate = sent / elapsed if sent else 0.0
        print(f"| {name} | {elapsed:.2f} | {sent} | {rate:.1f} | {rate / base:.2f}x | {ok} |")
    print(f"\ncommand: {' '.join(shlex.quote(a) for a in [sys.executable.replace(str(REPO) + '/', ''), *sys.argv])}")


if __name__ == "__main__":
    main()
