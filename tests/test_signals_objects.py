"""Object detection with a torchvision detector: random weights, real model code, thresholds and the offline path."""

import pyarrow as pa
import pytest
import torch
from torchvision.models import get_model

from conftest import gps_photos
from imagecoding.signals.objects import SCHEMA, DetectorSpec, detect_tables, fetch_detector, load_detector, summary
from imagecoding.weights import WeightsUnavailable

MODEL = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    model, preprocess, categories, min_side = load_detector(DetectorSpec(MODEL, None), min_score=0.0)
    with torch.no_grad():  # random weights score every box alike; spread the class scores so a threshold bites
        model.roi_heads.box_predictor.cls_score.bias.normal_(0, 2)
    return model, preprocess, categories, min_side


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    return [(f"id{i}", str(path)) for i, path in enumerate(gps_photos(root, 4, seed=3, size=(240, 320)))]


def detect(detector, items, min_score):
    model, preprocess, categories, min_side = detector
    return pa.concat_tables(detect_tables(model, preprocess, categories, items, min_score, min_side, batch_size=3)).to_pylist()


def test_detections_have_coco_labels_unit_boxes_and_counts(detector, photos):
    _, _, categories, _ = detector
    assert categories[1] == "person" and len(categories) == 91
    rows = detect(detector, photos, min_score=0.0)
    assert [r["image_id"] for r in rows] == ["id0", "id1", "id2", "id3"]
    assert any(r["count"] for r in rows), "random weights give low-score boxes; with no threshold some must show"
    for row in rows:
        assert row["status"] == "ok" and row["count"] == len(row["labels"]) == len(row["scores"]) == len(row["boxes"])
        assert row["person_count"] == row["labels"].count("person")
        assert set(row["labels"]) <= set(categories)
        for x0, y0, x1, y1 in row["boxes"]:
            assert 0 <= x0 <= x1 <= 1 and 0 <= y0 <= y1 <= 1


def test_the_threshold_keeps_only_confident_detections(detector, photos):
    everything = {r["image_id"]: r for r in detect(detector, photos, min_score=0.0)}
    top = max(s for r in everything.values() for s in r["scores"])
    above = detect(detector, photos, min_score=top + 1e-3)
    assert all(r["count"] == 0 and r["summary"] == "" for r in above)
    below = {r["image_id"]: r for r in detect(detector, photos, min_score=top - 1e-3)}
    for image_id, row in below.items():
        assert all(s >= top - 1e-3 for s in row["scores"])
        assert row["count"] == sum(s >= top - 1e-3 for s in everything[image_id]["scores"])
    assert sum(r["count"] for r in below.values()) > 0


def test_images_that_fail_to_load_are_rows(detector, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (row,) = detect(detector, [("bad", str(broken))], min_score=0.5)
    assert row["status"] in ("not_an_image", "corrupt", "truncated") and row["labels"] is None


def test_a_local_weights_file_is_loaded(photos, tmp_path):
    torch.manual_seed(7)
    reference = get_model(MODEL, weights=None, weights_backbone=None, num_classes=91).eval()
    path = tmp_path / "detector.pth"
    torch.save(reference.state_dict(), path)
    loaded = load_detector(DetectorSpec(MODEL, str(path)))
    first = {name: value for name, value in loaded[0].state_dict().items()}
    assert all(torch.equal(first[name], value) for name, value in reference.state_dict().items())
    description = fetch_detector(DetectorSpec(MODEL, str(path)))
    assert description["checkpoint"] == str(path) and len(description["weights_sha256"]) == 64
    assert SCHEMA.field("boxes").type == pa.list_(pa.list_(pa.float32(), 4))


def test_offline_without_cached_weights_stops_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = DetectorSpec(MODEL, "DEFAULT")
    with pytest.raises(WeightsUnavailable, match="snakemake models") as raised:
        fetch_detector(spec, cache_dir=str(tmp_path / "models"))
    assert "signals.objects.weights" in str(raised.value)
    with pytest.raises(WeightsUnavailable, match="never download"):
        load_detector(spec, cache_dir=str(tmp_path / "models"))
    with pytest.raises(WeightsUnavailable, match="is not a torchvision detection model"):
        DetectorSpec("yolo-v99").weights_enum()
    with pytest.raises(WeightsUnavailable, match="not a weights name"):
        DetectorSpec(MODEL, "IMAGENET_V9").weights_enum()


def test_the_summary_counts_labels_by_frequency():
    assert summary(["person", "flag", "person", "person"]) == "person ×3, flag"
    assert summary([]) == ""
