"""Embedding throughput (images/s) on the bundled example images, side by side in one run.

Compares DataLoader workers and JPEG draft decoding for a tiny model (decoding-bound) and for
ViT-B-32 with random weights (the default architecture's real compute; no download needed).
Prints a table of medians over repeats and the command that made it.

    .venv/bin/python bench/embed_throughput.py [--images 256] [--repeats 3] [--models tiny,ViT-B-32]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from imagecoding.clip.model import ModelSpec, input_size, load_clip  # noqa: E402
from imagecoding.clip.embeddings import embed_batches  # noqa: E402
from imagecoding.manifest import build_manifest, find_images  # noqa: E402


def example_items(count: int) -> list[tuple[str, str]]:
    """The example's decodable images, repeated to `count` so a run lasts long enough to time."""
    root = REPO / "example" / "images"
    manifest = build_manifest(find_images(root, ["jpg", "jpeg", "png", "webp", "gif"]), root)
    usable = manifest[manifest["status"] == "ok"]
    base = [(image_id, str(root / path)) for image_id, path in zip(usable["image_id"], usable["path"])]
    return [(f"{image_id}-{i}", path) for i in range(count // len(base) + 1) for image_id, path in base][:count]


def load(model_name: str, scratch: Path):
    if model_name == "tiny":
        from tiny_clip import MODEL_CONFIG, MODEL_NAME, make_checkpoint

        checkpoint = make_checkpoint(scratch / "tiny.pt")
        return load_clip(ModelSpec(MODEL_NAME, str(checkpoint), str(MODEL_CONFIG)))
    return load_clip(ModelSpec(model_name, None))  # random weights: same compute as the real model


def time_once(model, preprocess, items, workers: int, draft: bool, batch_size: int) -> float:
    started = time.perf_counter()
    done = 0
    for ids, _, failed in embed_batches(
        model,
        preprocess,
        items,
        batch_size=batch_size,
        workers=workers,
        min_side=input_size(model) if draft else None,
    ):
        done += len(ids) + len(failed)
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--models", default="tiny,ViT-B-32")
    parser.add_argument("--workers", default="0,2")
    args = parser.parse_args()

    import torch

    items = example_items(args.images)
    variants = [(int(w), draft) for w in args.workers.split(",") for draft in (False, True)]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for model_name in args.models.split(","):
            model, preprocess, _ = load(model_name, Path(scratch))
            time_once(model, preprocess, items[: args.batch_size], 0, False, args.batch_size)  # warm-up
            speeds = {variant: [] for variant in variants}
            for _ in range(args.repeats):
                for variant in variants:  # interleaved, so machine noise hits every variant alike
                    speeds[variant].append(time_once(model, preprocess, items, *variant, args.batch_size))
            baseline = statistics.median(speeds[variants[0]])
            for (workers, draft), values in speeds.items():
                median = statistics.median(values)
                rows.append((model_name, workers, "on" if draft else "off", median, median / baseline))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"{args.images} example images (28 distinct, repeated), batch {args.batch_size}, "
          f"median of {args.repeats}")
    print(f"| model | loader workers | JPEG draft | images/s | vs. workers {variants[0][0]}, draft off |")
    print("|---|---|---|---|---|")
    for model_name, workers, draft, median, ratio in rows:
        print(f"| {model_name} | {workers} | {draft} | {median:.1f} | {ratio:.2f}x |")
    print(f"\ncommand: {' '.join(shlex.quote(a) for a in [sys.executable.replace(str(REPO) + '/', ''), *sys.argv])}")


if __name__ == "__main__":
    main()
