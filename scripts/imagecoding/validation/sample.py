"""The validation sample as a probability sample: every image's chance of being drawn is known, so codes on it
can be weighted back to the whole corpus (metrics, estimates, R's dsl).

Two designs, both reproducible from the seed and drawn in rounds that never draw an image twice:
- stratified: within each predicted category of a scheme, the images in hash order; a simple random sample
  per category, so an image's probability is its category's quota over its size.
- uncertainty: Poisson sampling, each image by its own coin, with a probability that mixes uniform with the
  methods' uncertainty about it, so codes land where the machine errs (active inference, Zrnic & Candès 2024).

The design reads only the zero-shot scores and code-free methods, never the learned classifier: it stays the
same when codes arrive, and so the probabilities of earlier rounds stay true.

With near-duplicate groups (results/duplicates/groups.parquet) the unit drawn is the group: one image stands for
it (its representative), at most one image per group is drawn, and every copy carries the group's inclusion
probability, so a code on one copy is a code for its group, weighted as the group.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

DESIGN_COLUMNS = ["image_id", "stratum", "uncertainty", "round", "round_probability", "inclusion_probability",
                  "duplicate_group"]


def rank(image_id: str, seed: int) -> str:
    """An image's place in the draw: a hash of seed and content, so the same corpus gives the same sample,
    and adding images only inserts the new ones at their place."""
    return hashlib.sha256(f"{seed}\0{image_id}".encode()).hexdigest()


def uniform(image_id: str, seed: int, round_number: int) -> float:
    """The image's coin in one round: a uniform number in [0, 1) from seed, round and image."""
    digest = hashlib.sha256(f"{seed}\0{round_number}\0{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def quotas(counts: pd.Series, size: int, minimum: int) -> dict:
    """Images per category for a sample of `size`: `minimum` each where there are so many, the rest in
    proportion to each category's share, largest remainders first."""
    total = int(counts.sum())
    size = min(size, total)
    quota = {c: min(int(n), minimum) for c, n in counts.items()}
    remaining = size - sum(quota.values())
    if remaining > 0:
        shares = {c: remaining * n / total for c, n in counts.items()}
        for c, share in shares.items():
            quota[c] += min(int(share), int(counts[c]) - quota[c])
        left = size - sum(quota.values())
        for c in sorted(counts.index, key=lambda c: shares[c] - int(shares[c]), reverse=True):
            if left <= 0:
                break
            if quota[c] < counts[c]:
                quota[c] += 1
                left -= 1
    return quota


def stratified_design(predictions: pd.DataFrame, scheme: str, size: int, minimum: int, seed: int,
                      rounds: int = 1) -> pd.DataFrame:
    """Every image with a predicted category: the round it is drawn in (0: not drawn) and its probabilities.

    Round r takes per category the images in hash order up to the largest quota of a sample of r * size;
    so after R rounds the drawn images of a category are a simple random sample of it, drawn with
    probability quota / images. `round_probability` is the chance within its own round, among the images
    earlier rounds left.
    """
    table = predictions.dropna(subset=[scheme]).drop_duplicates("image_id").copy()
    table["_rank"] = [rank(i, seed) for i in table["image_id"]]
    table = table.sort_values([scheme, "_rank"])
    counts = table[scheme].value_counts()
    # taken[r][c]: images of category c drawn by the end of round r+1 (never fewer than a round before)
    taken = [quotas(counts, size, minimum)]
    for r in range(2, rounds + 1):
        taken.append({c: max(taken[-1][c], q) for c, q in quotas(counts, r * size, minimum).items()})
    parts = []
    for category, group in table.groupby(scheme, sort=True):
        n = len(group)
        position = np.arange(n)
        drawn_in = np.zeros(n, dtype=int)
        round_probability = np.zeros(n)
        before = 0
        for r, by_category in enumerate(taken, start=1):
            now = by_category[category]
            new = (position >= before) & (position < now)
            drawn_in[new] = r
            round_probability[new] = (now - before) / (n - before) if n > before else 0.0
            before = now
        last, previous = taken[-1][category], taken[-2][category] if rounds > 1 else 0
        round_probability[drawn_in == 0] = (last - previous) / (n - previous) if n > previous else 0.0
        parts.append(pd.DataFrame({"image_id": group["image_id"].to_numpy(), "stratum": category, "uncertainty": np.nan,
                                   "round": drawn_in, "round_probability": round_probability,
                                   "inclusion_probability": last / n}))
    return _ordered(parts)


def capped_probabilities(scores: np.ndarray, size: float) -> np.ndarray:
    """Probabilities proportional to `scores` that sum to `size`, none above 1 (those are drawn for sure)."""
    scores = np.asarray(scores, dtype=float)
    probabilities = np.zeros_like(scores)
    certain = np.zeros(len(scores), dtype=bool)
    size = min(float(size), float(len(scores)))
    while True:
        rest = size - certain.sum()
        weights = np.where(certain, 0.0, scores)
        probabilities = np.where(certain, 1.0, rest * weights / weights.sum() if weights.sum() > 0 else 0.0)
        over = (probabilities > 1) & ~certain
        if not over.any():
            return np.clip(probabilities, 0.0, 1.0)
        certain |= over


def uncertainty_design(uncertainty: pd.DataFrame, size: int, uniform_share: float, seed: int,
                       rounds: int = 1) -> pd.DataFrame:
    """uncertainty: image_id, stratum (the predicted category, for the record) and uncertainty in [0, 1].

    Each image's probability per round is proportional to uniform_share / N + (1 - uniform_share) * u / sum(u),
    scaled to `size` in expectation; uniform_share is the floor that keeps every image's probability above
    zero (uniform_share * size / N at least). Every round tosses every image's coin again with the same
    probability and draws those not drawn before, so after R rounds an image was drawn with probability
    1 - (1 - p)^R.
    """
    table = uncertainty.drop_duplicates("image_id").reset_index(drop=True)
    u = np.clip(table["uncertainty"].to_numpy(dtype=float), 0.0, 1.0)
    n = len(table)
    if n == 0:
        return pd.DataFrame(columns=DESIGN_COLUMNS)
    mixed = uniform_share / n + (1 - uniform_share) * (u / u.sum() if u.sum() > 0 else np.full(n, 1 / n))
    p = capped_probabilities(mixed, size)
    drawn_in = np.zeros(n, dtype=int)
    for r in range(1, rounds + 1):
        coins = np.array([uniform(i, seed, r) for i in table["image_id"]])
        drawn_in[(drawn_in == 0) & (coins < p)] = r
    return _ordered([pd.DataFrame({"image_id": table["image_id"], "stratum": table["stratum"], "uncertainty": u,
                                   "round": drawn_in, "round_probability": p,
                                   "inclusion_probability": 1 - (1 - p) ** rounds})])


def _ordered(parts: list[pd.DataFrame]) -> pd.DataFrame:
    design = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=DESIGN_COLUMNS)
    if "duplicate_group" not in design:
        design["duplicate_group"] = design["image_id"]
    return design[DESIGN_COLUMNS].sort_values("image_id", ignore_index=True)


def one_per_group(scores: pd.DataFrame, groups: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.Series]:
    """(one row of `scores` per group, image_id -> duplicate_group of every scored image).

    The group's representative stands for it where it is scored; otherwise its first scored copy.
    Without groups every image is its own group.
    """
    table = scores.drop_duplicates("image_id")
    membership = pd.Series(table["image_id"].to_numpy(), index=table["image_id"].to_numpy())
    if groups is not None and len(groups):
        membership = membership.map(groups.set_index("image_id")["duplicate_group"]).fillna(membership)
    standing = table.assign(_group=membership.loc[table["image_id"]].to_numpy())
    standing["_representative"] = standing["image_id"] == standing["_group"]
    standing = standing.sort_values("_representative", ascending=False, kind="stable").drop_duplicates("_group")
    return standing.drop(columns=["_group", "_representative"]), membership


def spread_to_groups(design: pd.DataFrame, membership: pd.Series) -> pd.DataFrame:
    """Every copy gets its group's stratum and probabilities; only the image that stands for it is drawn."""
    by_group = design.assign(duplicate_group=membership.loc[design["image_id"]].to_numpy()).set_index("duplicate_group")
    rows = by_group.loc[membership.to_numpy()].reset_index()
    rows["standing"] = rows["image_id"]
    rows["image_id"] = membership.index.to_numpy()
    rows.loc[rows["image_id"] != rows["standing"], "round"] = 0
    return rows[DESIGN_COLUMNS].sort_values("image_id", ignore_index=True)


def margin_uncertainty(scores: pd.DataFrame, scheme: str, others: list[pd.Series] = ()) -> pd.DataFrame:
    """How unsure the code-free methods are of each image's category of `scheme`: 1 - (p1 - p2) of the
    zero-shot scores (percent), and 1 wherever another method (the ensemble) disagrees with zero-shot."""
    table = scores.drop_duplicates("image_id").dropna(subset=[scheme]).set_index("image_id")
    first = table.get(f"{scheme}_prob_1", table[f"{scheme}_prob"]).astype(float) / 100
    second = table[f"{scheme}_prob_2"].astype(float) / 100 if f"{scheme}_prob_2" in table else 0.0
    u = (1 - (first - second)).clip(0, 1)
    for other in others:
        codes = other.reindex(table.index)
        u[codes.notna() & (codes != table[scheme])] = 1.0
    return pd.DataFrame({"image_id": table.index, "stratum": table[scheme].to_numpy(), "uncertainty": u.to_numpy()})


def study_design(settings: dict, scheme: str, scores: pd.DataFrame, others: list[pd.Series] = (),
                 groups: pd.DataFrame | None = None) -> pd.DataFrame:
    """The design of a study's `validation` block over every image: stratified by zero-shot's category of `scheme`,
    or by uncertainty, where `others` are code-free methods' codes of the scheme (the ensemble's). With `groups`
    (image_id, duplicate_group) the groups are the units drawn."""
    scores = scores.dropna(subset=[scheme])
    units, membership = one_per_group(scores, groups)
    if settings["design"] == "uncertainty":
        design = uncertainty_design(margin_uncertainty(units, scheme, others), settings["sample_size"],
                                    settings["uniform_share"], settings["seed"], settings["round"])
    else:
        design = stratified_design(units[["image_id", scheme]], scheme, settings["sample_size"],
                                   settings["min_per_category"], settings["seed"], settings["round"])
    return spread_to_groups(design, membership)


def round_sample(design: pd.DataFrame, round_number: int) -> pd.DataFrame:
    """The images of one round, with their probabilities."""
    return design[design["round"] == round_number].reset_index(drop=True)


def stratified_sample(predictions: pd.DataFrame, scheme: str, size: int, minimum: int, seed: int) -> pd.DataFrame:
    """The first round of the stratified design: `size` images split across the predicted categories."""
    return round_sample(stratified_design(predictions, scheme, size, minimum, seed), 1)


def design_weights(design: pd.DataFrame | None, coded: pd.Index) -> tuple[pd.Series, list[str]]:
    """Inverse-probability weights of the coded images and those the design never drew.

    With near-duplicate groups a coded image stands for its group's images: its weight is the group's size over
    the group's probability, so image-level figures still estimate the corpus of images.

    Returns (weight per coded image, ids of coded images outside the sample). With any outside, the codes are
    not a probability sample: every weight is 1 and the caller says the weighted figures are not valid.
    """
    coded = pd.Index(coded).unique()
    if design is None or design.empty:
        return pd.Series(1.0, index=coded), list(coded)
    drawn = design[design["round"] > 0].set_index("image_id")["inclusion_probability"]
    if "duplicate_group" in design:
        # A code on any copy of a drawn group is a code for the group: for the whole group's images, so it weighs
        # group size / the group's probability (Horvitz-Thompson over groups); without copies, 1 / probability.
        drawn_groups = design[design["round"] > 0].set_index("duplicate_group")["inclusion_probability"]
        sizes = design.groupby("duplicate_group").size()
        group_of = design.set_index("image_id")["duplicate_group"]
        drawn = (group_of.map(drawn_groups) / group_of.map(sizes)).dropna()
    outside = [i for i in coded if i not in drawn.index]
    if outside:
        return pd.Series(1.0, index=coded), outside
    return (1.0 / drawn.reindex(coded)).astype(float), []


def sample_validity(design: pd.DataFrame | None, coded) -> tuple[pd.Series, bool, str, list[str]]:
    """Whether the coded images are the workflow's own probability sample, and their weights.

    Returns (weights, valid, why not, coded images outside the sample). Valid takes every coded image drawn
    by the design and every image a chance above zero; otherwise every weight is 1 and `why not` says what to do.
    """
    coded = pd.Index(coded).unique()
    weights, outside = design_weights(design, coded)
    impossible = 0 if design is None else int((design["inclusion_probability"] <= 0).sum())
    if outside:
        return weights, False, (f"{len(outside)} of {len(coded)} coded images were not drawn by the workflow's sample "
                                "(validation.design), so no inclusion probability is known for them"), outside
    if impossible and len(coded):
        return (pd.Series(1.0, index=coded), False,
                f"{impossible} images had no chance of being drawn (a category got no place in the stratified sample); "
                "raise validation.min_per_category above 0 or validation.sample_size", [])
    return weights, True, "", []
