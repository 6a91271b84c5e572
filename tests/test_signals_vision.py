"""Google Cloud Vision against a local fake endpoint: key handling, retries, failures, cache, privacy."""

import io

import pyarrow as pa
import pytest
from PIL import Image

from conftest import gps_photos
from imagecoding.response_cache import ResponseCache
from imagecoding.retries import ServiceConfigError
from imagecoding.signals.vision import VisionSettings, vision_tables
from vision_server import FakeVision

KEY = "vision-key-never-written"


@pytest.fixture
def fake():
    server = FakeVision(KEY).start()
    yield server
    server.stop()


@pytest.fixture
def items(tmp_path):
    return [(f"id{i:02d}", str(p)) for i, p in enumerate(gps_photos(tmp_path / "photos", 18, seed=4, size=(300, 500)))]


def settings_for(fake, **changes) -> VisionSettings:
    values = dict(endpoint=fake.endpoint, api_key_env="TEST_VISION_KEY", max_results=5, max_side=256,
                  features=("LABEL_DETECTION", "OBJECT_LOCALIZATION", "TEXT_DETECTION"), price_per_1000=1.5,
                  max_concurrency=2)
    values.update(changes)
    return VisionSettings(**values)


def run(settings, cache, items):
    return {r["image_id"]: r for r in pa.concat_tables(vision_tables(items, settings, cache)).to_pylist()}


def test_labels_objects_and_text_per_image_and_nothing_paid_twice(fake, items, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_VISION_KEY", KEY)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    fake.script = ["429", "ok", "image_error"]  # the first request is rate limited, the third's first image fails
    rows = run(settings_for(fake), cache, items)
    assert len(rows) == 18 and max(entry["images"] for entry in fake.log) == 16  # 16 images per request at most
    failed = [r for r in rows.values() if r["status"] != "ok"]
    assert len(failed) == 1 and failed[0]["status"] == "vision_error" and "Bad image data" in failed[0]["error"]
    ok = [r for r in rows.values() if r["status"] == "ok"]
    assert all(r["labels"][0] == "Poster" and r["objects"] == ["Person"] and r["text"] == "VOTE ON SUNDAY" for r in ok)
    assert all(r["cost_usd"] == pytest.approx(3 * 1.5 / 1000) and not r["cached"] for r in ok)
    sent = fake.images_sent()
    again = run(settings_for(fake), cache, items)
    assert fake.images_sent() - sent == 1  # only the failed image is asked again: failures are not cached
    assert sum(r["cached"] for r in again.values()) == 17 and all(r["status"] == "ok" for r in again.values())


def test_the_key_travels_in_a_header_and_uploads_carry_no_exif(fake, items, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_VISION_KEY", KEY)
    run(settings_for(fake), ResponseCache(tmp_path / "cache.sqlite"), items[:3])
    assert all(entry["key"] == KEY for entry in fake.log)
    for jpeg in fake.log[0]["jpegs"]:
        with Image.open(io.BytesIO(jpeg)) as upload:
            assert max(upload.size) <= 256 and len(upload.getexif()) == 0
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_a_wrong_or_missing_key_stops_with_the_fix(fake, items, tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_VISION_KEY", raising=False)
    with pytest.raises(ServiceConfigError, match="TEST_VISION_KEY is not set"):
        run(settings_for(fake), ResponseCache(tmp_path / "cache.sqlite"), items[:2])
    monkeypatch.setenv("TEST_VISION_KEY", "wrong")
    with pytest.raises(ServiceConfigError, match="rejected the key"):
        run(settings_for(fake), ResponseCache(tmp_path / "cache.sqlite"), items[:2])


def test_server_errors_past_the_retries_become_rows(fake, items, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_VISION_KEY", KEY)
    fake.script = ["500"] * 3
    rows = run(settings_for(fake, max_retries=2, max_concurrency=1), ResponseCache(tmp_path / "c.sqlite"), items[:2])
    assert {r["status"] for r in rows.values()} == {"vision_error"} and "500" in rows["id00"]["error"]
