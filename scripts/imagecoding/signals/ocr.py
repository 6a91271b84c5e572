"""OCR: the text in each image, read by Tesseract through pytesseract, with its mean word confidence."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Iterator

import pyarrow as pa

from ..images import DEFAULT_MAX_PIXELS, ImageProblem, load_rgb
from .run import chunks, failed_row, rows_table

SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("text", pa.string()),
        ("confidence", pa.float32()),  # mean confidence (0-100) of the words kept
        ("words", pa.int32()),
        ("status", pa.string()),
        ("error", pa.string()),
    ]
)
MERGE_COLUMNS = ["text", "confidence", "words"]


@dataclass(frozen=True)
class OCRSettings:
    languages: str = "deu+eng"
    min_confidence: float = 50.0
    psm: int = 11
    max_side: int = 2500
    timeout_s: float = 60.0

    @classmethod
    def from_config(cls, ocr: dict) -> "OCRSettings":
        return cls(**{name: ocr[name] for name in cls.__dataclass_fields__})

    def store_settings(self) -> dict:
        """What shapes the text read, so a new Tesseract or other settings get a store of their own."""
        return {**asdict(self), "tesseract": tesseract_version()}


def tesseract_version() -> str | None:
    import pytesseract

    try:
        return str(pytesseract.get_tesseract_version())
    except (pytesseract.TesseractNotFoundError, OSError):
        return None


def tesseract_problems(languages: str) -> list[str]:
    """Why OCR cannot run as configured (binary or language data missing), each with the fix."""
    import pytesseract

    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        return [
            "signals.ocr: the tesseract program is not installed. Run `bash tools/install-system-deps.sh "
            "tesseract-ocr tesseract-ocr-deu tesseract-ocr-eng` (Debian/Ubuntu), `brew install tesseract "
            "tesseract-lang` (macOS), or use --use-conda; or remove ocr from ensemble.signals."
        ]
    installed = set(pytesseract.get_languages(config=""))
    missing = [language for language in languages.split("+") if language not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{language}" for language in missing)
        return [
            f"signals.ocr.languages: Tesseract has no data for {', '.join(missing)} (installed: "
            f"{', '.join(sorted(installed)) or 'none'}). Install it (Debian: apt-get install {packages}; or put "
            f"{missing[0]}.traineddata into TESSDATA_PREFIX), or change signals.ocr.languages."
        ]
    return []


def read_text(image, settings: OCRSettings) -> dict:
    """Text (lines as Tesseract found them), mean confidence and count of the words at or above min_confidence."""
    import pytesseract

    if max(image.size) > settings.max_side:
        image = image.copy()
        image.thumbnail((settings.max_side, settings.max_side))
    data = pytesseract.image_to_data(
        image,
        lang=settings.languages,
        config=f"--psm {settings.psm}",
        output_type=pytesseract.Output.DICT,
        timeout=settings.timeout_s,
    )
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences = []
    for word, confidence, block, paragraph, line in zip(
        data["text"], data["conf"], data["block_num"], data["par_num"], data["line_num"]
    ):
        confidence = float(confidence)
        # layout rows have confidence -1; stray marks without a letter or digit are noise
        if confidence < max(settings.min_confidence, 0) or not any(c.isalnum() for c in word):
            continue
        lines.setdefault((block, paragraph, line), []).append(word.strip())
        confidences.append(confidence)
    text = "\n".join(" ".join(words) for words in lines.values())
    return {
        "text": text,
        "confidence": sum(confidences) / len(confidences) if confidences else None,
        "words": len(confidences),
    }


def _ocr_one(item: tuple[str, str], settings: OCRSettings, max_pixels: int) -> dict:
    image_id, path = item
    try:
        image = load_rgb(path, max_pixels=max_pixels)
    except ImageProblem as problem:
        return failed_row(image_id, problem.status, problem.detail)
    try:
        return {"image_id": image_id, **read_text(image, settings), "status": "ok", "error": None}
    except Exception as exc:  # Tesseract failed or timed out on this image: its row, not the run
        hint = f" (signals.ocr.timeout_s is {settings.timeout_s} s)" if "timeout" in str(exc).lower() else ""
        return failed_row(image_id, "ocr_failed", f"{type(exc).__name__}: {exc}{hint}")


def ocr_tables(
    items: list[tuple[str, str]], settings: OCRSettings, threads: int = 1, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Iterator[pa.Table]:
    """OCR result tables, 32 images at a time, with one Tesseract process per thread."""
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract's own threads would fight ours
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for chunk in chunks(items, 32):
            yield rows_table(list(pool.map(lambda item: _ocr_one(item, settings, max_pixels), chunk)), SCHEMA)
