"""The report's section on near-duplicate groups: how many pictures were reposted, the largest groups with their
accounts, and the pictures more than one account posted (results/duplicates/groups.parquet, through merged)."""

from __future__ import annotations

import pandas as pd


def duplicates_view(merged: pd.DataFrame, account_column: str | None, largest: int = 5, shown: int = 6) -> dict | None:
    """None when merged carries no groups; else the counts, the `largest` groups (up to `shown` images each) and
    the groups posted by more than one account."""
    if "duplicate_group" not in merged.columns:
        return None
    images = merged.dropna(subset=["duplicate_group"])
    per_image = images.drop_duplicates("image_id")
    sizes = per_image.groupby("duplicate_group").size().sort_values(ascending=False, kind="stable")
    copied = sizes[sizes > 1]
    accounts = pd.Series(dtype=object)
    if account_column and account_column in images.columns:
        posted = images.dropna(subset=[account_column])
        accounts = posted.groupby("duplicate_group")[account_column].agg(lambda a: sorted(set(map(str, a))))
    groups = []
    for group, size in copied.head(largest).items():
        members = per_image[per_image["duplicate_group"] == group]
        ordered = pd.concat([members[members["image_id"] == group], members[members["image_id"] != group]])
        groups.append({"group": group, "size": int(size), "image_ids": ordered["image_id"].head(shown).tolist(),
                       "accounts": accounts.get(group, [])})
    shared = accounts[accounts.map(len) > 1] if len(accounts) else accounts
    return {
        "groups": int(len(sizes)),
        "with_copies": int(len(copied)),
        "images_in_them": int(copied.sum()),
        "largest": groups,
        "shared_across_accounts": int(len(shared)),
        "shared": [{"group": g, "accounts": a, "size": int(sizes[g])} for g, a in shared.head(largest * 2).items()],
    }
