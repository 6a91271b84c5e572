"""The validation sample: stratified by a scheme's predicted category, stable across runs."""

from __future__ import annotations

import hashlib

import pandas as pd


def rank(image_id: str, seed: int) -> str:
    """An image's place in the draw: a hash of seed and content, so the same corpus gives the same sample,
    and adding images only inserts the new ones at their place."""
    return hashlib.sha256(f"{seed}\0{image_id}".encode()).hexdigest()


def stratified_sample(predictions: pd.DataFrame, scheme: str, size: int, minimum: int, seed: int) -> pd.DataFrame:
    """`size` images split across the predicted categories in proportion, at least `minimum` each where there are that many.

    predictions: one row per image with `image_id` and the scheme's column. Returns the chosen rows
    with a `stratum` column, in draw order within each category.
    """
    table = predictions.dropna(subset=[scheme]).drop_duplicates("image_id").copy()
    table["_rank"] = [rank(i, seed) for i in table["image_id"]]
    table = table.sort_values([scheme, "_rank"])
    counts = table[scheme].value_counts()
    total = int(counts.sum())
    size = min(size, total)
    quota = {c: min(n, minimum) for c, n in counts.items()}
    remaining = size - sum(quota.values())
    if remaining > 0:  # the rest in proportion to each category's share, largest remainders first
        shares = {c: remaining * n / total for c, n in counts.items()}
        extra = {c: min(int(s), counts[c] - quota[c]) for c, s in shares.items()}
        for c in extra:
            quota[c] += extra[c]
        left = size - sum(quota.values())
        for c in sorted(counts.index, key=lambda c: (shares[c] - int(shares[c])), reverse=True):
            if left <= 0:
                break
            if quota[c] < counts[c]:
                quota[c] += 1
                left -= 1
    chosen = pd.concat([group.head(quota[c]) for c, group in table.groupby(scheme, sort=True)], ignore_index=True)
    return chosen.drop(columns="_rank").rename(columns={scheme: "stratum"})
