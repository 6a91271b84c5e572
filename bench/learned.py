"""Seconds the learner takes, fit plus predict, at 10^4 and 10^5 stored embeddings.

What the learner (scripts/imagecoding/learn/) does for one variable, on synthetic data of the real shape: 512-dimensional
normalised embeddings (ViT-B-32) of six clustered classes in an embedding store written in parts of
2,048 as the embedding jobs write them, 300 coded images and four phrase points per class. Measured:
learn_variable as the rule runs it, whole: the nested cross-validation that gives the out-of-fold
metrics (C and the phrase points chosen inside each fold), the final fit, the learning curve, and the
prediction of every stored embedding read back part by part; repeated in one process, median shown.

    .venv/bin/python bench/learned.py [--sizes 10000,100000] [--codes 300] [--noise 0.08] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from functools import partial

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from imagecoding.clip.embeddings import EmbeddingStore  # noqa: E402
from imagecoding.clip.phrases import scores_from_store  # noqa: E402
from imagecoding.clip.scoring import l2_normalise  # noqa: E402
from imagecoding.learn.run import LearnSettings, learn_variable  # noqa: E402


def synthetic_store(folder: Path, count: int, classes: int, dims: int, noise: float, rng):
    """(ids, class of each, class centres) of `count` clustered embeddings written as the embedding jobs write them."""
    centres = l2_normalise(rng.normal(size=(classes, dims)))
    labels = rng.integers(0, classes, count)
    store = EmbeddingStore(folder)
    ids = [f"{i:064x}" for i in range(count)]
    for start in range(0, count, 2048):
        block = slice(start, start + 2048)
        vectors = l2_normalise(centres[labels[block]] + rng.normal(scale=noise, size=(len(ids[block]), dims)))
        store.write_embeddings(ids[block], vectors)
    return ids, labels, centres


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--codes", type=int, default=300)
    parser.add_argument("--noise", type=float, default=0.08)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    rows = []
    settings = LearnSettings()
    for count in [int(n) for n in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as scratch:
            ids, labels, centres = synthetic_store(Path(scratch) / "store", count, 6, 512, args.noise, rng)
            description = {"store_key": "store"}
            coded = rng.choice(count, args.codes, replace=False)
            names = np.asarray([f"class{k}" for k in range(6)], dtype=object)
            gold = pd.Series(names[labels[coded]], index=[ids[i] for i in coded])
            found, matrix = EmbeddingStore(Path(scratch) / "store").read_embeddings(list(gold.index))
            vectors = dict(zip(found, matrix.astype(np.float64)))
            # Four phrases per class, near its centre: what a scheme's phrase embeddings are to the images.
            phrases = l2_normalise(np.repeat(centres, 4, axis=0) + rng.normal(scale=0.06, size=(24, 512)))
            points = (phrases, np.repeat(names, 4).astype(str))
            over_store = partial(scores_from_store, description, scratch, ids)
            seconds, result = [], None
            for _ in range(args.repeats):
                started = time.perf_counter()
                result = learn_variable("v", list(names), gold, vectors, over_store, settings, {}, points)
                seconds.append(time.perf_counter() - started)
            assert len(result.table) == count
            rows.append((count, float(np.median(seconds)), result.card))
    print(f"{os.cpu_count()} cores; {args.codes} codes, 6 classes, 512 dimensions, noise {args.noise}; "
          f"median of {args.repeats}; the whole learner for one variable (nested CV, final fit, curve, every prediction)")
    print("| stored embeddings | fit + predict | C | phrase points | out-of-fold accuracy | macro-F1 |")
    print("|---|---|---|---|---|---|")
    for count, median, card in rows:
        print(f"| {count:,} | {median:.1f} s | {card['C']:g} | {'used' if card['phrase_points']['used'] else 'not used'} | "
              f"{card['out_of_fold']['accuracy']:.3f} | {card['out_of_fold']['macro_f1']:.3f} |")
    print(f"\ncommand: .venv/bin/python bench/learned.py --sizes {args.sizes} --codes {args.codes} "
          f"--noise {args.noise} --repeats {args.repeats}")


if __name__ == "__main__":
    main()
