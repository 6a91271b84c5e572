"""Each signal's rate (images/s) on the bundled example images, side by side in one run.

OCR runs the real Tesseract; the detectors and CoCa run with random weights (the same compute as
trained ones, nothing to download); tags score a vocabulary against stored embeddings. Prints a
table of medians over repeats and the command that made it.

    .venv/bin/python bench/signals_throughput.py [--images 56] [--repeats 3] [--detectors ...]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import torch  # noqa: E402

from imagecoding.clip.model import ModelSpec, load_clip  # noqa: E402
from imagecoding.manifest import build_manifest, decodable_images, find_images  # noqa: E402
from imagecoding.signals.captions import caption_tables  # noqa: E402
from imagecoding.signals.objects import DetectorSpec, detect_tables, load_detector  # noqa: E402
from imagecoding.signals.ocr import OCRSettings, ocr_tables  # noqa: E402
from imagecoding.signals.tags import tag_table  # noqa: E402


def example_items(count: int) -> list[tuple[str, str]]:
    """The example's decodable images, repeated to `count`."""
    root = REPO / "example" / "images"
    base = decodable_images(build_manifest(find_images(root, ["jpg", "jpeg", "png", "webp", "gif"]), root), root)
    return [(f"{image_id}-{i}", path) for i in range(count // len(base) + 1) for image_id, path in base][:count]


def rate(run, items, repeats: int) -> float:
    """Median images/s of `run(items)` (which must consume every table) over repeats."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        rows = sum(table.num_rows for table in run(items))
        assert rows == len(items)
        rates.append(len(items) / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=56)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--detectors",
        default="fasterrcnn_mobilenet_v3_large_320_fpn,ssdlite320_mobilenet_v3_large,fasterrcnn_mobilenet_v3_large_fpn,retinanet_resnet50_fpn_v2",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    items = example_items(args.images)
    rows = []

    for workers in (1, os.cpu_count() or 1):
        rows.append((f"ocr (Tesseract, {workers} thread{'s' if workers > 1 else ''})",
                     rate(lambda todo: ocr_tables(todo, OCRSettings(), threads=workers), items, args.repeats)))

    for name in args.detectors.split(","):
        model, preprocess, categories, min_side = load_detector(DetectorSpec(name, None), min_score=0.5)
        rows.append((f"objects: {name}", rate(
            lambda todo: detect_tables(model, preprocess, categories, todo, 0.5, min_side, batch_size=4, workers=1),
            items, args.repeats,
        )))

    for label, spec in (("captions: coca_ViT-B-32 (random weights)", ModelSpec("coca_ViT-B-32", None)),):
        model, preprocess, _ = load_clip(spec)
        rows.append((label, rate(
            lambda todo: caption_tables(model, preprocess, todo, batch_size=8, workers=1, max_length=20, min_side=224),
            items, 1,  # slow: one repeat
        )))

    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((100_000, 512)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    words = [f"word {i}" for i in range(40)]
    vectors = rng.standard_normal((40, 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [str(i) for i in range(len(embeddings))]
    rows.append(("tags: 40 words on 100,000 stored embeddings", rate(
        lambda todo: [tag_table(ids, embeddings, vectors, words, 100.0, 5, 5.0)] if len(todo) == len(ids) else [pa.table({})],
        ids, args.repeats,
    )))

    print(f"{len(items)} example images (the 28 distinct ones repeated), {os.cpu_count()} cores, torch threads {threads}, CPU")
    print("| signal | images/s |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:,.1f} |")
    print(f"\ncommand: {' '.join(shlex.quote(a) for a in [sys.executable.replace(str(REPO) + '/', ''), *sys.argv])}")


if __name__ == "__main__":
    main()
