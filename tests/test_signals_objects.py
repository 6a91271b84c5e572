"""Object detection with a torchvision detector: random weights, real model code, thresholds and the offline path."""

import logging

import pyarrow as pa
import pytest
import torch
from torchvision.models import get_model
from torchvision.ops.misc import FrozenBatchNorm2d

from conftest import gps_photos
from imagecoding.signals.objects import (
    SCHEMA, DetectorSpec, backbone_path, detect_tables, fetch_detector, load_detector, prepare_detector, summary,
)
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


@pytest.fixture(scope="module")
def local_weights(tmp_path_factory):
    torch.manual_seed(7)
    reference = get_model(MODEL, weights=None, weights_backbone=None, num_classes=91).eval()
    path = tmp_path_factory.mktemp("weights") / "detector.pth"
    torch.save(reference.state_dict(), path)
    return reference, path


def test_a_local_weights_file_is_loaded_and_its_folded_norms_compute_the_same(photos, local_weights):
    reference, path = local_weights
    loaded = load_detector(DetectorSpec(MODEL, str(path)))[0]
    norms = (torch.nn.BatchNorm2d, FrozenBatchNorm2d)
    assert any(isinstance(part, norms) for part in reference.backbone.modules())
    assert not any(isinstance(part, norms) for part in loaded.backbone.modules()), "every norm is folded"
    images = torch.rand(2, 3, 320, 320)
    with torch.no_grad():
        want, got = reference.backbone(images), loaded.backbone(images)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.allclose(want[name], got[name], rtol=1e-4, atol=1e-4), name
    description = fetch_detector(DetectorSpec(MODEL, str(path)))
    assert description["checkpoint"] == str(path) and len(description["weights_sha256"]) == 64
    assert SCHEMA.field("boxes").type == pa.list_(pa.list_(pa.float32(), 4))


def test_openvino_runs_the_backbone_as_torch_does_and_keeps_the_conversion(local_weights, photos, tmp_path, caplog):
    _, path = local_weights
    spec = DetectorSpec(MODEL, str(path))
    sha = fetch_detector(spec)["weights_sha256"]
    torch_model, preprocess, categories, min_side = load_detector(spec, min_score=0.0)
    with caplog.at_level(logging.INFO):
        ov_model = prepare_detector(load_detector(spec, min_score=0.0)[0], spec, "fp32", "openvino", "cpu", sha,
                                    tmp_path, min_side, threads=1)
    kept = backbone_path(tmp_path, spec, sha)
    assert type(ov_model.backbone).__name__ == "OpenVINOBackbone" and ov_model.backbone.out_channels == 256
    assert kept.is_file() and kept.with_suffix(".bin").is_file() and "converted the detector backbone" in caplog.text
    images = torch.rand(3, 3, 320, 416)  # another batch and size than the conversion's example
    with torch.no_grad():
        want, got = torch_model.backbone(images), ov_model.backbone(images)
    assert list(got) == list(want)
    for name in want:
        assert got[name].shape == want[name].shape
        assert torch.nn.functional.cosine_similarity(got[name].flatten(), want[name].flatten(), dim=0) > 0.99999
    rows = {}
    for label, model in (("torch", torch_model), ("openvino", ov_model)):
        rows[label] = pa.concat_tables(detect_tables(model, preprocess, categories, photos, 0.0, min_side, batch_size=2)).to_pylist()
    assert [r["labels"][:3] for r in rows["openvino"]] == [r["labels"][:3] for r in rows["torch"]]
    caplog.clear()
    stamp = kept.stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        prepare_detector(load_detector(spec)[0], spec, "fp32", "openvino", "cpu", sha, tmp_path, min_side, threads=1)
    assert kept.stat().st_mtime_ns == stamp and "converted" not in caplog.text  # the kept conversion is reused


def test_int8_quantises_the_box_head_and_keeps_its_scores(local_weights):
    _, path = local_weights
    spec = DetectorSpec(MODEL, str(path))
    exact = load_detector(spec)[0]
    fast = prepare_detector(load_detector(spec)[0], spec, "int8", "torch", "cpu", None, ".", 320, threads=1)
    linear = [type(part).__module__ for part in fast.roi_heads.modules() if "Linear" in type(part).__name__]
    assert linear and all("quantized" in module for module in linear)
    assert not any("quantized" in type(part).__module__ for part in fast.backbone.modules())
    pooled = torch.rand(64, 256, 7, 7)  # what roi_align hands the box head
    with torch.no_grad():
        want = exact.roi_heads.box_predictor(exact.roi_heads.box_head(pooled))
        got = fast.roi_heads.box_predictor(fast.roi_heads.box_head(pooled))
    for w, g in zip(want, got):
        assert torch.nn.functional.cosine_similarity(w.flatten(), g.flatten(), dim=0) > 0.999


def test_modes_that_do_not_exist_or_need_a_cpu_stop_with_advice(local_weights):
    _, path = local_weights
    spec = DetectorSpec(MODEL, str(path))
    model = load_detector(spec)[0]
    with pytest.raises(WeightsUnavailable, match="must be one of fp32, int8"):
        prepare_detector(model, spec, "bf16", "torch", "cpu", None, ".", 320, threads=1)
    with pytest.raises(WeightsUnavailable, match="on cuda use precision fp32 and backend torch"):
        prepare_detector(model, spec, "int8", "torch", "cuda", None, ".", 320, threads=1)
    assert prepare_detector(model, spec, "fp32", "torch", "cuda", None, ".", 320, threads=1) is model


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
