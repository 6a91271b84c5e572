"""Joining every per-image result back onto the researcher's posts."""

from __future__ import annotations

import pandas as pd

from .posts import post_image_links


def per_file_results(manifest: pd.DataFrame, image_tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The manifest (one row per file) with each per-image table joined on image_id."""
    merged = manifest.copy()
    for table in image_tables:
        clashes = [c for c in table.columns if c != "image_id" and c in merged.columns]
        if clashes:
            raise ValueError(f"result columns {clashes} would overwrite columns already merged; rename the scheme.")
        merged = merged.merge(table.drop_duplicates("image_id"), on="image_id", how="left")
    return merged


def merge_posts(
    files: pd.DataFrame,
    posts: pd.DataFrame | None,
    image_column: str | None = None,
    id_column: str | None = None,
    root: str = ".",
    separator: str | None = None,
) -> pd.DataFrame:
    """Posts left-joined with per-file results, one row per (post, image) pair.

    Nothing disappears: a post with several images gives several rows, a post whose image is
    missing keeps the manifest's `missing` status, a post naming no image keeps its row with
    empty image columns, and images no post names are appended with empty post columns.
    `has_post` tells the last group apart.
    """
    if posts is None:
        result = files.copy()
        result.insert(0, "has_post", False)
        return result
    links = post_image_links(posts, image_column, id_column, root, separator)
    clashes = [c for c in files.columns if c in posts.columns or c == "has_post"]
    renamed = files.rename(columns={c: f"image_{c}" for c in clashes})
    path_column = "image_path" if "path" in clashes else "path"
    linked = links.merge(renamed, left_on="path", right_on=path_column, how="left")
    if path_column != "path":
        linked = linked.drop(columns=["path"])
    post_rows = posts.reset_index(drop=True)
    joined = post_rows.iloc[linked["post_row"].to_numpy()].reset_index(drop=True)
    joined = pd.concat([joined, linked.drop(columns=["post_row"]).reset_index(drop=True)], axis=1)
    joined.insert(0, "has_post", True)
    named = set(links["path"].dropna())
    orphans = renamed[~renamed[path_column].isin(named)].copy()
    orphans.insert(0, "has_post", False)
    return pd.concat([joined, orphans], ignore_index=True)
