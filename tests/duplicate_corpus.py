"""A corpus of pictures with known copies, for measuring the duplicate groups (tests and bench).

Each picture is a party-style sharepic: a photo of shapes and gradients. Its copies are what a platform
and reposting accounts make of it: re-encoded, downscaled, cropped by 7% a side, bannered over the bottom
12%, brightened, saved as PNG. The hard negatives are one template (frame, logo bar, slogan band) around
different photos: close in a global hash, different pictures.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

COPIES = ("reencoded", "downscaled", "cropped", "bannered", "brightened", "png")


def photo(rng: np.random.Generator, width: int = 320, height: int = 320) -> Image.Image:
    """A picture with structure at several scales: a gradient background and random shapes."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    base = rng.random(3) * 255
    slope = (rng.random((2, 3)) - 0.5) * 300
    pixels = base + x[..., None] * slope[0] + y[..., None] * slope[1]
    image = Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(6, 14)):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        size = rng.integers(width // 10, width // 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        box = [x0 - size // 2, y0 - size // 2, x0 + size // 2, y0 + size // 2]
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return image


def templated(rng: np.random.Generator, template_seed: int = 99, size: int = 320) -> Image.Image:
    """One party's template (colour frame, logo bar, slogan band) around a new photo."""
    template = np.random.default_rng(template_seed)
    frame = tuple(int(v) for v in template.integers(0, 256, 3))
    canvas = Image.new("RGB", (size, size), frame)
    margin, bar = size // 12, size // 6
    canvas.paste(photo(rng, size - 2 * margin, size - 2 * bar - margin), (margin, bar))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([margin, size - bar, size - margin, size - margin // 2], fill=(255, 255, 255))
    draw.text((margin * 2, size - bar + 10), "VOTE FOR CHANGE " + str(rng.integers(0, 100)), fill=(0, 0, 0))
    draw.rectangle([margin, margin // 2, size // 3, bar - 8], fill=(250, 220, 0))
    return canvas


def copy_of(image: Image.Image, kind: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """(file bytes, extension) of one kind of copy."""
    width, height = image.size
    if kind == "reencoded":
        return encoded(image, "JPEG", quality=int(rng.integers(55, 75))), "jpg"
    if kind == "downscaled":
        return encoded(image.resize((width // 2, height // 2), Image.Resampling.LANCZOS), "JPEG", quality=80), "jpg"
    if kind == "cropped":
        dx, dy = round(width * 0.07), round(height * 0.07)
        return encoded(image.crop((dx, dy, width - dx, height - dy)), "JPEG", quality=85), "jpg"
    if kind == "bannered":
        bannered = image.copy()
        draw = ImageDraw.Draw(bannered)
        draw.rectangle([0, round(height * 0.88), width, height], fill=(20, 20, 20))
        draw.text((8, round(height * 0.9)), "repost via @someone", fill=(255, 255, 255))
        return encoded(bannered, "JPEG", quality=85), "jpg"
    if kind == "brightened":
        return encoded(ImageEnhance.Brightness(image).enhance(1.25), "JPEG", quality=85), "jpg"
    if kind == "png":
        return encoded(image, "PNG"), "png"
    raise ValueError(kind)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def write_corpus(root: Path, pictures: int = 12, templates: int = 10, seed: int = 0) -> dict[str, str]:
    """Write the corpus under `root`; returns file name -> true picture (the group it belongs to).

    Every second picture is a template sharepic, so hard negatives also have copies.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    truth: dict[str, str] = {}
    for number in range(pictures):
        picture = templated(rng) if number % 2 else photo(rng)
        name = f"picture{number:03d}"
        (root / f"{name}.jpg").write_bytes(encoded(picture, "JPEG", quality=92))
        truth[f"{name}.jpg"] = name
        for kind in COPIES:
            payload, extension = copy_of(picture, kind, rng)
            (root / f"{name}_{kind}.{extension}").write_bytes(payload)
            truth[f"{name}_{kind}.{extension}"] = name
    for number in range(templates):  # the hard negatives: the template around a photo of their own
        name = f"template{number:03d}"
        (root / f"{name}.jpg").write_bytes(encoded(templated(rng), "JPEG", quality=90))
        truth[f"{name}.jpg"] = name
    return truth


def pairwise_precision_recall(truth: dict[str, str], found: dict[str, str]) -> tuple[float, float]:
    """Pairwise precision and recall of found groups (file -> group) against the true pictures."""
    names = sorted(truth)
    true_pairs = {(a, b) for a, b in itertools.combinations(names, 2) if truth[a] == truth[b]}
    found_pairs = {(a, b) for a, b in itertools.combinations(names, 2) if found[a] == found[b]}
    hits = len(true_pairs & found_pairs)
    precision = hits / len(found_pairs) if found_pairs else 1.0
    recall = hits / len(true_pairs) if true_pairs else 1.0
    return precision, recall
