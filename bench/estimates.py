"""Coverage, width and bias of the shares the estimates step publishes, by simulation with a known truth.

The corpus of tests/test_estimates.py: true categories, a machine that is wrong more often where it is unsure
and sends its errors to one category (Rally), its uncertainty. Per repetition, human codes are drawn by the
workflow's own samplers (imagecoding.validation.sample) and the shares computed by the step's own function
(imagecoding.estimates.prevalence.shares, ppi_py underneath). Prints one row per estimator.

    .venv/bin/python bench/estimates.py [--repeats 300] [--images 3000] [--codes 200] [--level 0.9]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))

from imagecoding.estimates.prevalence import shares  # noqa: E402
from imagecoding.validation.sample import design_weights, round_sample, uncertainty_design  # noqa: E402
from test_estimates import CATEGORIES, corpus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--codes", type=int, default=200)
    parser.add_argument("--level", type=float, default=0.9)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    found: dict[str, list[tuple[float, float, bool]]] = {}

    def record(name, value, low, high, truth):
        found.setdefault(name, []).append((value - truth, high - low, low <= truth <= high))

    for repeat in range(args.repeats):
        ids, truth, machine, uncertainty = corpus(rng, args.images)
        true_share = float((truth == "Rally").mean())
        table = pd.DataFrame({"image_id": ids, "stratum": machine.to_numpy(), "uncertainty": uncertainty.to_numpy()})
        for design, uniform_share in (("uniform", 1.0), ("uncertainty", 0.3)):
            drawn_table = uncertainty_design(table, args.codes, uniform_share, seed=repeat)
            drawn = pd.Index(round_sample(drawn_table, 1)["image_id"])
            weights, _ = design_weights(drawn_table, drawn)
            for weighted in (True, False) if design == "uncertainty" else (True,):
                w = weights if weighted else pd.Series(1.0, index=drawn)
                rows, _ = shares(machine, truth.reindex(drawn), w, ids, CATEGORIES, args.level, min_coded=2)
                row = rows[0]
                suffix = "" if weighted else ", unweighted"
                if design == "uniform":
                    record("naive (machine's share)", row["naive"], row["naive"], row["naive"], true_share)
                record(f"human codes only, {design} design{suffix}", row["human"], row["human_low"], row["human_high"],
                       true_share)
                record(f"PPI, {design} design{suffix}", row["ppi"], row["ppi_low"], row["ppi_high"], true_share)
    print(f"{args.repeats} repetitions, {args.images} images, {args.codes} codes expected, level {args.level}, "
          f"share of Rally (the machine over-counts it)\n")
    print("| estimator | coverage | median width | mean error | sd of error |")
    print("|---|---|---|---|---|")
    for name, values in found.items():
        error, width, cover = (np.array(x, dtype=float) for x in zip(*values))
        print(f"| {name} | {cover.mean():.3f} | {np.median(width):.4f} | {error.mean():+.4f} | {error.std():.4f} |")
    print(f"\ncommand: .venv/bin/python bench/estimates.py --repeats {args.repeats} --images {args.images} "
          f"--codes {args.codes} --level {args.level}")


if __name__ == "__main__":
    main()
