"""Which images an LLM task asks about: all decodable ones, those of chosen posts, or a seeded sample."""

from __future__ import annotations

import pandas as pd

from ..llm.request_keys import request_key
from ..llm.task import Request
from ..manifest import distinct_decodable
from ..merge import merge_posts
from ..posts import absolute_path


def posts_with_images(config: dict, manifest: pd.DataFrame, posts: pd.DataFrame | None) -> pd.DataFrame | None:
    """One row per (post, image) with the post's columns and the image's id; None without a posts table."""
    if posts is None:
        return None
    settings = config["posts"]
    joined = merge_posts(
        manifest, posts, settings["image_column"], settings["id_column"], config["images"]["root"],
        settings["image_separator"],
    )
    return joined[joined["has_post"]]


def select_images(
    manifest: pd.DataFrame,
    post_images: pd.DataFrame | None = None,
    filters: dict | None = None,
    sample: int | None = None,
    seed: int = 0,
    key: str = "frames",
) -> pd.DataFrame:
    """Distinct decodable images: all, those of posts matching every filter, or a seeded sample.

    `key` names the config block (frames, ensemble) in messages about its filters.
    """
    usable = distinct_decodable(manifest)
    if filters:
        if post_images is None:
            raise ValueError(f"{key}.filters needs a posts table (posts.path) to filter on.")
        keep = pd.Series(True, index=post_images.index)
        for column, allowed in filters.items():
            if column not in post_images.columns:
                raise ValueError(f"{key}.filters.{column}: the posts table has no column '{column}'.")
            allowed = allowed if isinstance(allowed, list) else [allowed]
            keep &= post_images[column].astype(str).isin([str(a) for a in allowed])
        usable = usable[usable["image_id"].isin(set(post_images.loc[keep, "image_id"].dropna()))]
    if sample is not None and sample < len(usable):
        usable = usable.sample(n=sample, random_state=seed)
    return usable.sort_values("image_id").reset_index(drop=True)


def image_requests(digest: str, images: pd.DataFrame, root) -> list[Request]:
    """One request per image of a multimodal task; the image's content hash stands for its bytes in the key."""
    return [
        Request(request_key(digest, image_id), image_id, str(absolute_path(path, root)))
        for image_id, path in zip(images["image_id"], images["path"])
    ]
