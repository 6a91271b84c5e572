"""OCR with the real Tesseract on rendered German and English text."""

from pathlib import Path

import pyarrow as pa
import pytest
from PIL import Image, ImageDraw, ImageFont

from imagecoding.signals.ocr import SCHEMA, OCRSettings, ocr_tables, read_text, tesseract_problems
from imagecoding.signals.run import compute_signal, signal_store

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # fonts-dejavu-core: umlauts included


def poster(path: Path, lines: list[str], size=(900, 400)) -> Path:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 48)
    for number, line in enumerate(lines):
        draw.text((40, 40 + 90 * number), line, font=font, fill="black")
    image.save(path)
    return path


@pytest.fixture(autouse=True)
def tesseract_threads(monkeypatch):
    """The OCR step sets OMP_THREAD_LIMIT for its Tesseract processes; in the test process it must not
    outlive these tests (every later Snakemake run and `nproc` would inherit one thread)."""
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")


@pytest.fixture
def posters(tmp_path):
    return [
        ("de", poster(tmp_path / "de.png", ["Grüße aus München", "Für eine gerechte Zukunft"])),
        ("en", poster(tmp_path / "en.jpg", ["Vote on Sunday", "Clean air now"])),
        ("blank", poster(tmp_path / "blank.png", [])),
    ]


def test_german_and_english_text_is_read_with_umlauts(posters):
    settings = OCRSettings(languages="deu+eng")
    texts = {name: read_text(Image.open(path).convert("RGB"), settings) for name, path in posters}
    assert "Grüße aus München" in texts["de"]["text"]
    assert "Für eine gerechte Zukunft" in texts["de"]["text"]
    assert "Vote on Sunday" in texts["en"]["text"] and "Clean air now" in texts["en"]["text"]
    assert texts["de"]["text"].count("\n") == 1  # the poster's two lines stay two lines
    assert texts["de"]["words"] == 7 and texts["de"]["confidence"] > 80
    assert texts["blank"] == {"text": "", "confidence": None, "words": 0}


def test_words_below_the_confidence_threshold_are_dropped(posters):
    image = Image.open(posters[0][1]).convert("RGB")
    assert read_text(image, OCRSettings(min_confidence=100.1))["words"] == 0
    assert read_text(image, OCRSettings(min_confidence=0))["words"] == 7


def test_rows_cover_every_image_and_failures_are_rows(posters, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(Path(posters[1][1]).read_bytes()[:300])
    items = [(name, str(path)) for name, path in posters] + [("broken", str(broken))]
    table = pa.concat_tables(ocr_tables(items, OCRSettings(), threads=2))
    assert table.schema == SCHEMA
    rows = {r["image_id"]: r for r in table.to_pylist()}
    assert set(rows) == {"de", "en", "blank", "broken"}
    assert rows["broken"]["status"] == "truncated" and rows["broken"]["text"] is None
    assert rows["en"]["status"] == "ok" and "Sunday" in rows["en"]["text"]


def test_a_second_run_reads_only_new_images(posters, tmp_path):
    settings = OCRSettings()
    store = signal_store(tmp_path / "store", "ocr", settings.store_settings())
    asked = []

    def counting(todo):
        asked.extend(image_id for image_id, _ in todo)
        return ocr_tables(todo, settings)

    items = [(name, str(path)) for name, path in posters]
    compute_signal("ocr", items[:2], store, counting)
    table = compute_signal("ocr", items, store, counting)
    assert asked == ["de", "en", "blank"]  # de and en once, blank when it was added
    assert list(table["image_id"]) == ["de", "en", "blank"]
    other = signal_store(tmp_path / "store", "ocr", OCRSettings(languages="eng").store_settings())
    assert other.folder != store.folder  # other languages, other results


def test_missing_tesseract_or_language_data_is_named_with_the_fix(monkeypatch):
    problems = tesseract_problems("deu+eng+xyz")
    assert len(problems) == 1 and "xyz" in problems[0] and "tesseract-ocr-xyz" in problems[0]
    assert tesseract_problems("deu+eng") == []
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    (problem,) = tesseract_problems("eng")
    assert "not installed" in problem and "install-system-deps.sh" in problem
