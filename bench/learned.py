"""Seconds the learner takes, fit plus predict, at 10^4 and 10^5 stored embeddings.

What the learner (scripts/imagecoding/learn/) does for one variable, on synthetic data of the real shape: 512-dimensional
normalised embeddings (ViT-B-32) of six clustered classes in an embedding store written in parts of
2,048 as the embedding jobs write them, and 300 coded images. Measured: the nested cross-validation
that gives the out-of-fold metrics, the final fit with C chosen over the 13-point grid, and the
prediction of every stored embedding read back part by part. Whole process timing is not the point
here: each phase is timed inside one process, repeated, and the median shown.

    .venv/bin/python bench/learned.py [--sizes 10000,100000] [--codes 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from imagecoding.clip.embeddings import EmbeddingStore  # noqa: E402
from imagecoding.clip.phrases import stored_embeddings  # noqa: E402
from imagecoding.clip.scoring import l2_normalise  # noqa: E402
from imagecoding.learn.probe import fit, model_record, out_of_fold, predict_proba, prediction_table  # noqa: E402


def synthetic_store(folder: Path, count: int, classes: int, dims: int, rng) -> tuple[list[str], np.ndarray]:
    centres = l2_normalise(rng.normal(size=(classes, dims)))
    labels = rng.integers(0, classes, count)
    store = EmbeddingStore(folder)
    ids = [f"{i:064x}" for i in range(count)]
    for start in range(0, count, 2048):
        block = slice(start, start + 2048)
        vectors = l2_normalise(centres[labels[block]] + rng.normal(scale=0.08, size=(len(ids[block]), dims)))
        store.write_embeddings(ids[block], vectors)
    return ids, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--codes", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    rows = []
    for count in [int(n) for n in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as scratch:
            ids, labels = synthetic_store(Path(scratch) / "store", count, 6, 512, rng)
            store = EmbeddingStore(Path(scratch) / "store")
            coded = rng.choice(count, args.codes, replace=False)
            _, X = store.read_embeddings([ids[i] for i in coded])
            y = np.asarray([f"class{labels[i]}" for i in coded], dtype=object)
            timings = {"out of fold (nested CV)": [], "final fit": [], "predict the store": []}
            for _ in range(args.repeats):
                started = time.perf_counter()
                oof = out_of_fold(X, y)
                timings["out of fold (nested CV)"].append(time.perf_counter() - started)
                started = time.perf_counter()
                model, _ = fit(X, y)
                timings["final fit"].append(time.perf_counter() - started)
                record = model_record(model, "v", {})
                started = time.perf_counter()
                rows_out = 0
                for part_ids, part in stored_embeddings(store, ids):
                    rows_out += len(prediction_table("v", part_ids, predict_proba(record, part), record["classes"], 3))
                timings["predict the store"].append(time.perf_counter() - started)
                assert rows_out == count
            medians = {k: float(np.median(v)) for k, v in timings.items()}
            rows.append((count, medians, float((np.unique(y)[oof.argmax(axis=1)] == y).mean())))
    print(f"{os.cpu_count()} cores; {args.codes} codes, 6 classes, 512 dimensions; median of {args.repeats}")
    print("| stored embeddings | out of fold (nested CV) | final fit | predict the store | total | out-of-fold accuracy |")
    print("|---|---|---|---|---|---|")
    for count, medians, accuracy in rows:
        total = sum(medians.values())
        print(f"| {count:,} | {medians['out of fold (nested CV)']:.1f} s | {medians['final fit']:.1f} s | "
              f"{medians['predict the store']:.1f} s | {total:.1f} s | {accuracy:.3f} |")
    print(f"\ncommand: .venv/bin/python bench/learned.py --sizes {args.sizes} --codes {args.codes} --repeats {args.repeats}")


if __name__ == "__main__":
    main()
