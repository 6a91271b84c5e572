"""Near-duplicate groups: candidate pairs from region hashes, verified on thumbnails, joined by a capped union-find.

1. Candidates. Each image has three region hashes (fingerprint.py). Every hash is rotated so that each
   16-bit band leads in turn; sorted that way, hashes that agree on a band sit close together, and each is
   compared with the next `window` hashes only. That finds pairs within `max_hash_distance` bits without an
   all-pairs comparison (Manku et al.'s permuted tables, with a fixed window instead of exact buckets).
   Optional: the nearest neighbours in the stored CLIP embeddings add candidates.
2. Verification. A candidate pair is kept when the thumbnails agree block by block under one of a few
   alignments (as they are, one cropped to the other's frame, or the top part only, above a banner), and
   their colours agree. Every block must agree: one party's template around different photos agrees on the
   frame but not on the photo; the same template printed in another colour fails the colour check.
3. Groups. Verified pairs, closest first, are joined by union-find; a join that would make a group larger
   than `max_group_size` is refused, so one chain of look-alikes cannot swallow the corpus.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .fingerprint import TOP_KEEP, chromaticity, region, region_hashes, thumbnails_array

BLOCKS = 8  # an 8x8 grid of 4-pixel blocks: a different photo or slogan in one block is enough to tell apart
GROUP_COLUMNS = ["image_id", "duplicate_group", "representative", "group_size", "signal", "distance", "joined_to"]


@dataclass(frozen=True)
class Settings:
    """duplicates.* as the rule's params give them."""

    max_hash_distance: int = 12  # bits of 64: true copies in the test corpus lie at 0-2 (median 0), other pictures at 26
    window: int = 8  # neighbours compared in each sorted order
    max_block_distance: float = 0.6  # worst block's mean absolute difference, in standard deviations
    max_colour_distance: float = 0.12  # median over colour cells of the difference in red, green, blue shares
    crops: tuple[float, ...] = (0.04, 0.07, 0.10)  # cut from each side, tried in verification
    max_group_size: int = 500
    embedding_neighbours: int = 0  # library only for now: 0, embeddings add no candidates

    @classmethod
    def from_config(cls, block: dict) -> "Settings":
        return cls(
            max_hash_distance=int(block["max_hash_distance"]),
            window=int(block["window"]),
            max_block_distance=float(block["max_block_distance"]),
            max_colour_distance=float(block["max_colour_distance"]),
            crops=tuple(float(c) for c in block["crops"]),
            max_group_size=int(block["max_group_size"]),
        )


def hash_candidates(hashes: dict[str, np.ndarray], max_distance: int, window: int) -> pd.DataFrame:
    """Pairs (a < b, image positions) whose region hashes lie within max_distance bits, with the closest
    distance and the regions that gave it."""
    names = list(hashes)
    values = np.concatenate([hashes[name] for name in names])
    n = len(hashes[names[0]])
    owner = np.tile(np.arange(n), len(names))
    kind = np.repeat(np.arange(len(names)), n)
    found = []
    for band in range(4):
        shift = np.uint64(16 * band)
        rotated = (values << shift) | (values >> (np.uint64(64) - shift)) if band else values
        order = np.argsort(rotated, kind="stable")
        for step in range(1, window + 1):
            left, right = order[:-step], order[step:]
            distance = np.bitwise_count(values[left] ^ values[right])
            keep = (distance <= max_distance) & (owner[left] != owner[right])
            if keep.any():
                a, b = owner[left[keep]], owner[right[keep]]
                found.append(pd.DataFrame({
                    "a": np.minimum(a, b), "b": np.maximum(a, b), "distance": distance[keep],
                    "kind_a": np.where(a < b, kind[left[keep]], kind[right[keep]]),
                    "kind_b": np.where(a < b, kind[right[keep]], kind[left[keep]]),
                }))
    if not found:
        return pd.DataFrame({"a": [], "b": [], "distance": [], "signal": []})
    pairs = pd.concat(found, ignore_index=True).sort_values("distance", kind="stable").drop_duplicates(["a", "b"])
    labels = np.array(names)
    pairs["signal"] = "hash:" + labels[pairs["kind_a"].to_numpy()] + "~" + labels[pairs["kind_b"].to_numpy()]
    return pairs[["a", "b", "distance", "signal"]].reset_index(drop=True)


def embedding_candidates(embeddings: np.ndarray, neighbours: int) -> pd.DataFrame:
    """Pairs of each image with its nearest neighbours in the (normalised) embeddings."""
    from sklearn.neighbors import NearestNeighbors

    k = min(neighbours + 1, len(embeddings))
    if k < 2:
        return pd.DataFrame({"a": [], "b": [], "distance": [], "signal": []})
    index = NearestNeighbors(n_neighbors=k, metric="cosine").fit(embeddings)
    distance, position = index.kneighbors(embeddings)
    a = np.repeat(np.arange(len(embeddings)), k - 1)
    b = position[:, 1:].ravel()
    keep = a != b
    pairs = pd.DataFrame({"a": np.minimum(a, b)[keep], "b": np.maximum(a, b)[keep],
                          "distance": distance[:, 1:].ravel()[keep], "signal": "embedding"})
    return pairs.drop_duplicates(["a", "b"]).reset_index(drop=True)


def _standardised(views: np.ndarray) -> np.ndarray:
    views = views.astype(np.float32)
    centred = views - views.mean(axis=(1, 2), keepdims=True)
    return centred / (centred.std(axis=(1, 2), keepdims=True) + 1.0)


def _worst_block(a: np.ndarray, b: np.ndarray, blocks: int = BLOCKS) -> np.ndarray:
    """Per pair, the largest mean absolute difference of standardised views over a blocks x blocks grid."""
    a, b = _standardised(a), _standardised(b)
    n, side, _ = a.shape
    cell = side // blocks
    difference = np.abs(a - b)[:, : cell * blocks, : cell * blocks]
    per_block = difference.reshape(n, blocks, cell, blocks, cell).mean(axis=(2, 4))
    return per_block.reshape(n, -1).max(axis=1)


def verify(thumbs: np.ndarray, a: np.ndarray, b: np.ndarray, crops=(0.04, 0.07, 0.10), chunk: int = 20_000):
    """(distance, alignment) per pair: the smallest worst-block difference over the alignments tried."""
    best = np.full(len(a), np.inf, dtype=np.float32)
    how = np.full(len(a), "", dtype=object)
    for start in range(0, len(a), chunk):
        left, right = thumbs[a[start:start + chunk]], thumbs[b[start:start + chunk]]
        tried = {"same": (left, right), "top": (region(left, 0, TOP_KEEP, 0, 1), region(right, 0, TOP_KEEP, 0, 1))}
        for cut in crops:
            # Either image may be the crop: cut the other one to the same frame.
            tried[f"crop{cut:g}"] = (region(left, cut, 1 - cut, cut, 1 - cut), right)
            tried[f"crop{cut:g}'"] = (left, region(right, cut, 1 - cut, cut, 1 - cut))
        part_best = best[start:start + chunk]
        part_how = how[start:start + chunk]
        for name, (x, y) in tried.items():
            distance = _worst_block(x, y)
            better = distance < part_best
            part_best[better] = distance[better]
            part_how[better] = name
    return best, how


class CappedUnionFind:
    """Union-find by size whose unions stop at a maximum group size."""

    def __init__(self, n: int, cap: int):
        self.parent = np.arange(n)
        self.size = np.ones(n, dtype=np.int64)
        self.cap = cap
        self.refused = 0

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, x: int, y: int) -> bool:
        rx, ry = self.find(x), self.find(y)
        if rx == ry:
            return False
        if self.size[rx] + self.size[ry] > self.cap:
            self.refused += 1
            return False
        if self.size[rx] < self.size[ry]:
            rx, ry = ry, rx
        self.parent[ry] = rx
        self.size[rx] += self.size[ry]
        return True


def colour_distance(chroma: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Median over the colour cells of the L1 difference in chromaticity: a banner changes a few cells, one
    template printed in another colour changes most."""
    return np.median(np.abs(chroma[a] - chroma[b]).sum(axis=2), axis=1)


def verified_pairs(thumbs: np.ndarray, settings: Settings, embeddings: np.ndarray | None = None,
                   chroma: np.ndarray | None = None) -> pd.DataFrame:
    """Candidate pairs with their verification distances; `verified` says which are kept."""
    candidates = [hash_candidates(region_hashes(thumbs), settings.max_hash_distance, settings.window)]
    if embeddings is not None and settings.embedding_neighbours:
        candidates.append(embedding_candidates(embeddings, settings.embedding_neighbours))
    pairs = pd.concat(candidates, ignore_index=True).drop_duplicates(["a", "b"]).reset_index(drop=True)
    pairs[["a", "b"]] = pairs[["a", "b"]].astype(np.int64)
    distance, alignment = verify(thumbs, pairs["a"].to_numpy(), pairs["b"].to_numpy(), settings.crops)
    pairs["candidate_distance"] = pairs.pop("distance")
    pairs["verify_distance"] = distance
    pairs["alignment"] = alignment
    pairs["colour_distance"] = (colour_distance(chroma, pairs["a"].to_numpy(), pairs["b"].to_numpy())
                                if chroma is not None else 0.0)
    pairs["verified"] = (distance <= settings.max_block_distance) & (pairs["colour_distance"] <= settings.max_colour_distance)
    return pairs


def group_positions(n: int, pairs: pd.DataFrame, cap: int) -> tuple[np.ndarray, dict[int, tuple[int, str, float]], int]:
    """(root per position, position -> (joined to, signal, distance), joins refused by the cap)."""
    kept = pairs[pairs["verified"]].sort_values("verify_distance", kind="stable")
    groups = CappedUnionFind(n, cap)
    evidence: dict[int, tuple[int, str, float]] = {}
    for a, b, signal, alignment, distance in zip(kept["a"], kept["b"], kept["signal"], kept["alignment"],
                                                 kept["verify_distance"]):
        if groups.union(int(a), int(b)):
            joined = int(b) if int(b) not in evidence else int(a)
            evidence.setdefault(joined, (int(a) if joined == int(b) else int(b), f"{signal}+{alignment}", float(distance)))
    roots = np.array([groups.find(i) for i in range(n)])
    return roots, evidence, groups.refused


def singleton_groups(image_ids) -> pd.DataFrame:
    """Each image its own group: when duplicates.enabled is off, or for an image without a thumbnail."""
    ids = pd.Series(list(image_ids), dtype=object)
    return pd.DataFrame({"image_id": ids, "duplicate_group": ids, "representative": ids,
                         "group_size": pd.Series(1, index=ids.index, dtype="int64"), "signal": None,
                         "distance": pd.Series(float("nan"), index=ids.index), "joined_to": None})[GROUP_COLUMNS]


def duplicate_groups(images: pd.DataFrame, settings: Settings, embeddings: np.ndarray | None = None) -> pd.DataFrame:
    """One row per image of `images` (image_id, thumbnail, width, height, and an order column `first_seen`).

    The group is named after its representative: the largest copy (most pixels), the earliest on a tie.
    `signal` and `distance` say what joined an image to its group (empty for a representative alone).
    """
    images = images.reset_index(drop=True)
    n = len(images)
    if n == 0:
        return pd.DataFrame({column: [] for column in GROUP_COLUMNS})
    thumbs = thumbnails_array(images["thumbnail"])
    pairs = verified_pairs(thumbs, settings, embeddings, chromaticity(images["thumbnail"])) if n > 1 else pd.DataFrame(
        {"a": [], "b": [], "signal": [], "alignment": [], "verify_distance": [], "verified": []})
    roots, evidence, refused = group_positions(n, pairs, settings.max_group_size)
    pixels = (images["width"].fillna(0).astype("int64") * images["height"].fillna(0).astype("int64")).to_numpy()
    order = images["first_seen"].to_numpy() if "first_seen" in images else np.arange(n)
    frame = pd.DataFrame({"position": np.arange(n), "root": roots, "pixels": pixels, "order": order})
    ranked = frame.sort_values(["root", "pixels", "order"], ascending=[True, False, True], kind="stable")
    representative = ranked.drop_duplicates("root").set_index("root")["position"]
    ids = images["image_id"].to_numpy()
    rep_position = representative.loc[roots].to_numpy()
    out = pd.DataFrame({
        "image_id": ids,
        "duplicate_group": ids[rep_position],
        "representative": ids[rep_position],
    })
    out["group_size"] = out.groupby("duplicate_group")["image_id"].transform("size").astype("int64")
    out["signal"] = [evidence[i][1] if i in evidence else None for i in range(n)]
    out["distance"] = [evidence[i][2] if i in evidence else None for i in range(n)]
    out["joined_to"] = [ids[evidence[i][0]] if i in evidence else None for i in range(n)]
    verified = int(pairs["verified"].sum()) if len(pairs) else 0
    logging.info("%d candidate pairs, %d verified; %d joins refused by max_group_size", len(pairs), verified, refused)
    out.attrs.update(candidates=len(pairs), verified=verified, refused=refused)
    return out[GROUP_COLUMNS]


def groups_for_merge(groups: pd.DataFrame) -> pd.DataFrame:
    """What merged.csv carries of the groups: each image's `duplicate_group` and its `group_size`."""
    return groups[["image_id", "duplicate_group", "group_size"]]
