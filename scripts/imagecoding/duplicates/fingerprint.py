"""Perceptual hashes of regions, derived from the manifest's thumbnails (never from a second decode).

Three regions per image, so that one edit moves at most one of them far: the whole picture, its inner
part (7% cut from each side: what a cropped copy shows) and its top (the bottom 20% left out: where
reposts put a banner). A cropped copy's whole hash lands near the original's inner hash.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dctn

from ..images import COLOUR_SIDE, THUMBNAIL_SIDE

REGIONS = ("whole", "inner", "top")
INNER_CUT = 0.07
TOP_KEEP = 0.8


GREY_BYTES = THUMBNAIL_SIDE * THUMBNAIL_SIDE
COLOUR_BYTES = COLOUR_SIDE * COLOUR_SIDE * 3


def _rows(column) -> np.ndarray:
    return np.frombuffer(b"".join(column), dtype=np.uint8).reshape(-1, GREY_BYTES + COLOUR_BYTES)


def thumbnails_array(column) -> np.ndarray:
    """(n, side, side) uint8 greyscale thumbnails from a column of thumbnail bytes (images.grey_thumbnail);
    kept as bytes (1 KB an image), turned into floats a chunk at a time."""
    return _rows(column)[:, :GREY_BYTES].reshape(-1, THUMBNAIL_SIDE, THUMBNAIL_SIDE)


def chromaticity(column) -> np.ndarray:
    """(n, cells, 3): each colour cell's share of red, green and blue; a brighter copy keeps it."""
    rgb = _rows(column)[:, GREY_BYTES:].reshape(-1, COLOUR_SIDE * COLOUR_SIDE, 3).astype(np.float32)
    return (rgb + 8.0) / (rgb.sum(axis=2, keepdims=True) + 24.0)


def resample_matrix(start: float, stop: float, size: int = THUMBNAIL_SIDE, out: int = THUMBNAIL_SIDE) -> np.ndarray:
    """(out, size) linear-interpolation matrix taking rows start..stop (fractions) of `size` onto `out` rows."""
    centres = start * size + (np.arange(out) + 0.5) * (stop - start) * size / out - 0.5
    centres = np.clip(centres, 0, size - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, size - 1)
    weight = centres - low
    matrix = np.zeros((out, size), dtype=np.float32)
    matrix[np.arange(out), low] += 1 - weight
    matrix[np.arange(out), high] += weight
    return matrix


def region(thumbs: np.ndarray, top: float, bottom: float, left: float, right: float) -> np.ndarray:
    """The part of each thumbnail between the fractions given, resampled to full size."""
    rows = resample_matrix(top, bottom)
    cols = resample_matrix(left, right)
    return np.einsum("ry,nyx,cx->nrc", rows, thumbs.astype(np.float32), cols, optimize=True)


def region_views(thumbs: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "whole": thumbs.astype(np.float32),
        "inner": region(thumbs, INNER_CUT, 1 - INNER_CUT, INNER_CUT, 1 - INNER_CUT),
        "top": region(thumbs, 0.0, TOP_KEEP, 0.0, 1.0),
    }


def phash(views: np.ndarray) -> np.ndarray:
    """64-bit DCT hashes (uint64) of (n, side, side) views: the 8x8 lowest frequencies against their median."""
    low = dctn(views, axes=(1, 2), norm="ortho")[:, :8, :8].reshape(len(views), 64)
    bits = low > np.median(low[:, 1:], axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def region_hashes(thumbs: np.ndarray, chunk: int = 20_000) -> dict[str, np.ndarray]:
    """Region name -> uint64 hash per image, a chunk of images at a time (floats of all 10^6 would take 12 GB)."""
    parts = [{name: phash(view) for name, view in region_views(thumbs[start:start + chunk]).items()}
             for start in range(0, len(thumbs), chunk)]
    return {name: np.concatenate([part[name] for part in parts]) for name in REGIONS}


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits differing between uint64 arrays, element-wise."""
    x = np.bitwise_xor(a, b)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
