"""The one image loader: content hashing, safe decoding checks, RGB loading, batches for models, EXIF-free re-encoding."""

from __future__ import annotations

import hashlib
import io
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's own default; a configured limit replaces it per call.
DEFAULT_MAX_PIXELS = 89_478_485

ORIENTATION_TAG = 0x0112
SWAPPED_ORIENTATIONS = {5, 6, 7, 8}


class ImageProblem(Exception):
    """An image that cannot be used, with a short machine-readable status and a human detail."""

    def __init__(self, status: str, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass
class ImageCheck:
    """What the manifest records about one file."""

    image_id: str | None
    bytes: int | None
    width: int | None
    height: int | None
    format: str | None
    status: str
    error: str | None
    # Small thumbnails from the same decode (grey_thumbnail): the duplicate search reads them.
    thumbnail: bytes | None = None


def content_id(payload: bytes) -> str:
    """Image ids are the sha256 of the file's bytes, so identical files share one id."""
    return hashlib.sha256(payload).hexdigest()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _classify(exc: BaseException) -> ImageProblem:
    """Map Pillow's many exception types onto the statuses researchers see in the report."""
    if isinstance(exc, ImageProblem):
        return exc
    message = str(exc) or type(exc).__name__
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageProblem("too_large", message)
    if isinstance(exc, UnidentifiedImageError):
        return ImageProblem("not_an_image", "Pillow cannot identify this file as an image")
    lowered = message.lower()
    if "truncated" in lowered or "premature end" in lowered or "broken data stream" in lowered:
        return ImageProblem("truncated", message)
    return ImageProblem("corrupt", f"{type(exc).__name__}: {message}")


def _displayed_size(image: Image.Image) -> tuple[int, int]:
    """Width and height as shown to a viewer, i.e. after the EXIF orientation is applied."""
    width, height = image.size
    try:
        orientation = image.getexif().get(ORIENTATION_TAG)
    except Exception:  # a broken EXIF block does not make the pixels unusable
        orientation = None
    if orientation in SWAPPED_ORIENTATIONS:
        return height, width
    return width, height


@contextmanager
def bomb_guard(max_pixels: int):
    """Pillow's decompression-bomb limit, with its warning (1x to 2x the limit) raised as an error too."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


# About 1 KB per image: fine enough to see a 7% crop (2 pixels), small enough to keep for 10^6 images.
THUMBNAIL_SIDE = 32
COLOUR_SIDE = 4


def grey_thumbnail(image: Image.Image) -> bytes:
    """A THUMBNAIL_SIDE-square greyscale thumbnail, then a COLOUR_SIDE-square RGB one (aspect ignored,
    orientation applied) of a loaded image: the grey one holds the layout, the colour one what grey loses
    (one template printed in red and in blue)."""
    upright = _to_rgb(ImageOps.exif_transpose(image))
    grey = upright.convert("L").resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BOX)
    colour = upright.resize((COLOUR_SIDE, COLOUR_SIDE), Image.Resampling.BOX)
    return grey.tobytes() + colour.tobytes()


def check_image_bytes(payload: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageCheck:
    """Decode an image to the end (reduced-scale for JPEG) and report its size, format and status."""
    image_id = content_id(payload)
    size = len(payload)
    if size == 0:
        return ImageCheck(image_id, 0, None, None, None, "empty", "the file has zero bytes")
    width = height = fmt = None
    try:
        with bomb_guard(max_pixels):
            image = Image.open(io.BytesIO(payload))
            fmt = image.format
            width, height = _displayed_size(image)
            if fmt == "JPEG":
                # A DCT-scaled decode still walks the whole entropy-coded stream, so it
                # catches truncation at a fraction of the cost of a full decode.
                # Never below twice the thumbnail's side: an upsampled thumbnail would not match a larger copy's.
                floor = 2 * THUMBNAIL_SIDE
                image.draft(image.mode, (min(image.width, max(floor, image.width // 8)),
                                         min(image.height, max(floor, image.height // 8))))
            image.load()
    except Exception as exc:  # every decoder failure becomes a recorded status
        problem = _classify(exc)
        return ImageCheck(image_id, size, width, height, fmt, problem.status, problem.detail)
    try:
        thumbnail = grey_thumbnail(image)
    except Exception:  # the image decoded; a thumbnail it cannot give only leaves it out of the duplicate search
        thumbnail = None
    return ImageCheck(image_id, size, width, height, fmt, "ok", None, thumbnail)


def check_image_file(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageCheck:
    """Read, hash and check one file; a file that cannot be read is a status, not an exception."""
    try:
        payload = Path(path).read_bytes()
    except FileNotFoundError:
        return ImageCheck(None, None, None, None, None, "missing", f"no file at {path}")
    except IsADirectoryError:
        return ImageCheck(None, None, None, None, None, "unreadable", f"{path} is a directory")
    except OSError as exc:
        return ImageCheck(None, None, None, None, None, "unreadable", f"{type(exc).__name__}: {exc}")
    return check_image_bytes(payload, max_pixels)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB for any mode: transparency goes onto white, as a viewer would show it."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bit instead of clipping everything to white.
        return image.point(lambda value: value / 256).convert("L").convert("RGB")
    return image.convert("RGB")


def load_rgb(
    path: str | Path, min_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Open an image for a model or a thumbnail: first frame, EXIF orientation applied, RGB.

    With `min_side`, JPEGs are decoded at the smallest DCT scale whose shorter side is still at
    least `min_side` pixels; that is safe whenever the caller downsizes to `min_side` anyway.
    """
    try:
        with bomb_guard(max_pixels):
            image = Image.open(path)
            if min_side and image.format == "JPEG":
                image.draft("RGB", (min_side, min_side))
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)
    except FileNotFoundError:
        raise ImageProblem("missing", f"no file at {path}") from None
    except Exception as exc:
        raise _classify(exc) from exc


def encode_without_metadata(image: Image.Image, max_side: int, quality: int = 85) -> bytes:
    """Downsize and re-encode as JPEG; nothing of the original file (EXIF, GPS, ICC) is copied."""
    copy = image.copy()
    copy.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    copy.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def upload_jpeg(path: str | Path, max_side: int, max_pixels: int = DEFAULT_MAX_PIXELS, quality: int = 85) -> bytes:
    """What leaves the machine (an API upload, a report thumbnail): resized, re-encoded, without EXIF."""
    return encode_without_metadata(load_rgb(path, min_side=max_side, max_pixels=max_pixels), max_side, quality)


class ImageFiles:
    """A map-style dataset of (image_id, path): decoding and preprocessing run in DataLoader workers."""

    def __init__(self, items: list[tuple[str, str]], preprocess, min_side: int | None, max_pixels: int):
        self.items = items
        self.preprocess = preprocess
        self.min_side = min_side
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        _, path = self.items[index]
        try:
            return index, self.preprocess(load_rgb(path, self.min_side, self.max_pixels)), None
        except ImageProblem as problem:
            return index, None, f"{problem.status}: {problem.detail}"
        except Exception as exc:  # a preprocessing failure is one image's problem, not the run's
            return index, None, f"corrupt: {type(exc).__name__}: {exc}"


class _Collate:
    """Batches of (indices, tensors, failures); `stack` for fixed-size model inputs, a list for detectors."""

    def __init__(self, stack: bool):
        self.stack = stack

    def __call__(self, batch):
        import torch

        good = [(i, t) for i, t, _ in batch if t is not None]
        failed = [(i, e) for i, t, e in batch if t is None]
        tensors = [t for _, t in good]
        if not tensors:
            tensors = None
        elif self.stack:
            tensors = torch.stack(tensors)
        return [i for i, _ in good], tensors, failed


def _heap_trimmer():
    """glibc's malloc_trim, or a no-op where the C library has none (macOS, musl)."""
    import ctypes
    import ctypes.util

    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


def image_batches(
    items: list[tuple[str, str]],
    preprocess,
    batch_size: int,
    workers: int = 0,
    min_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    stack: bool = True,
    pin_memory: bool = False,
):
    """Yield (image ids, preprocessed tensors, [(image id, error)]) for (image_id, path) items.

    Every model step (embeddings, objects, captions) reads images this way: the same loading,
    orientation and failure statuses as the manifest's. With `workers` > 0, DataLoader processes
    decode (a GPU leaves the CPU cores free for it); with 0, one thread of this process decodes the
    next batch while the model runs on this one: on a CPU that measured faster than a worker
    process, which competes for the same cores and copies every batch between processes.
    """
    dataset = ImageFiles(items, preprocess, min_side, max_pixels)
    collate = _Collate(stack)
    # Decoded images and the model's activations come and go in large blocks of varying size; with
    # a decode thread beside the model's threads, glibc kept freed blocks and a ViT-B-32 job grew by
    # about 130 MB per 1,000 images. Handing them back after each batch keeps memory flat (docs/benchmarks.md).
    trim = _heap_trimmer()
    if workers == 0:
        from concurrent.futures import ThreadPoolExecutor

        def batch(start: int):
            return collate([dataset[i] for i in range(start, min(start + batch_size, len(items)))])

        with ThreadPoolExecutor(max_workers=1) as decoder:
            following = decoder.submit(batch, 0) if items else None
            for start in range(0, len(items), batch_size):
                indices, tensors, failed = following.result()
                if start + batch_size < len(items):
                    following = decoder.submit(batch, start + batch_size)
                yield [items[i][0] for i in indices], tensors, [(items[i][0], error) for i, error in failed]
                trim()
        return
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        prefetch_factor=4,  # keeps batches coming while the model runs
    )
    for indices, tensors, failed in loader:
        yield [items[i][0] for i in indices], tensors, [(items[i][0], error) for i, error in failed]
        trim()
