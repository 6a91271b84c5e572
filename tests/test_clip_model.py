"""What each CLIP step builds: weights described without a model, the text tower alone, the fast modes (bf16,
int8) and the probe that chooses between them."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import gps_photos
from imagecoding.clip.embeddings import embed_batches, encode_phrases, loader_settings
from imagecoding.clip.model import ModelSpec, fetch_weights, load_clip, load_text_tower
from imagecoding.clip.phrases import phrase_embeddings
from imagecoding.clip.scoring import category_scores
from imagecoding.schemes import load_scheme
from tiny_clip import COCA_CONFIG, COCA_NAME, MODEL_CONFIG, MODEL_NAME

REPO = Path(__file__).resolve().parent.parent
SCHEME = load_scheme("image_type", REPO / "config" / "schemes" / "image_types.yaml")


def test_describing_a_local_checkpoint_builds_no_model_and_imports_no_torch(tiny_checkpoint):
    code = (
        f"import sys; sys.path.insert(0, {str(REPO / 'scripts')!r})\n"
        "from imagecoding.clip.model import ModelSpec, fetch_weights\n"
        f"d = fetch_weights(ModelSpec({MODEL_NAME!r}, {str(tiny_checkpoint)!r}, {str(MODEL_CONFIG)!r}), draft=True)\n"
        "print(d['input_size'], d['store_key'], 'torch' in sys.modules, 'open_clip' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "32" and out[1].endswith("__draft") and out[2:] == ["False", "False"]
    int8 = fetch_weights(ModelSpec(MODEL_NAME, str(tiny_checkpoint), str(MODEL_CONFIG)), precision="int8")
    assert int8["store_key"].endswith("__int8") and int8["text_key"].endswith("__phrases")


@pytest.mark.parametrize("config, name", [(MODEL_CONFIG, MODEL_NAME), (COCA_CONFIG, COCA_NAME)], ids=["clip", "coca"])
def test_the_text_tower_alone_encodes_like_the_whole_model(config, name, tiny_checkpoint, tiny_coca_checkpoint):
    checkpoint = tiny_checkpoint if name == MODEL_NAME else tiny_coca_checkpoint
    description = fetch_weights(ModelSpec(name, str(checkpoint), str(config)))
    tower = load_text_tower(description)
    model, _, tokenizer = load_clip(ModelSpec(name, str(checkpoint), str(config)))
    phrases = list(SCHEME.phrases[:5])
    assert np.allclose(tower.encode(phrases), encode_phrases(model, tokenizer, phrases), atol=1e-5)
    assert tower.logit_scale == pytest.approx(float(model.logit_scale.detach().exp()))
    assert sum(p.numel() for p in tower.tower.parameters()) < sum(p.numel() for p in model.parameters())


def test_phrases_are_encoded_once_per_model(tiny_checkpoint, tmp_path):
    description = fetch_weights(ModelSpec(MODEL_NAME, str(tiny_checkpoint), str(MODEL_CONFIG)))
    phrases = list(SCHEME.phrases)
    first, scale, encoded = phrase_embeddings(description, phrases, tmp_path)
    assert encoded == len(phrases)
    again, scale_again, encoded_again = phrase_embeddings(description, phrases[:3] + ["a ballot box"], tmp_path)
    assert encoded_again == 1 and scale_again == scale  # only the new phrase meets the text tower
    assert np.allclose(again[:3], first[:3])


# bf16 keeps three significant digits: close to fp32 (cosine), yet a few points of probability can move.
@pytest.mark.parametrize("precision, cosine, clear_margin", [("int8", 0.999, 1), ("bf16", 0.9999, 10)])
def test_the_fast_modes_keep_the_categories(precision, cosine, clear_margin, tiny_checkpoint, tmp_path):
    import torch

    items = [(str(i), str(p)) for i, p in enumerate(gps_photos(tmp_path, 60, seed=11, size=(64, 64)))]
    scores = {}
    for mode in ("fp32", precision):
        model, preprocess, tokenizer = load_clip(ModelSpec(MODEL_NAME, str(tiny_checkpoint), str(MODEL_CONFIG)), precision=mode)
        embeddings = np.concatenate([e for _, e, _ in embed_batches(model, preprocess, items, workers=0)])
        phrases = encode_phrases(model, tokenizer, list(SCHEME.phrases))
        scores[mode] = (embeddings, category_scores(embeddings, phrases, SCHEME, 100.0, "max")[0], phrases)
    if precision == "bf16":
        assert model.visual.conv1.weight.dtype == torch.bfloat16  # a cast, not autocast
        assert np.array_equal(scores["fp32"][2], scores["bf16"][2])  # the text tower stays fp32: phrases alike
    assert (scores["fp32"][0] * scores[precision][0]).sum(axis=1).min() > cosine
    ranked = np.sort(scores["fp32"][1], axis=1)
    clear = ranked[:, -1] - ranked[:, -2] > clear_margin  # where fp32 itself is not torn between two categories
    same = scores["fp32"][1].argmax(axis=1) == scores[precision][1].argmax(axis=1)
    assert same[clear].all() and clear.sum() >= 30 and same.mean() >= 0.95


def test_auto_takes_the_fastest_mode_that_stays_close_to_fp32_and_probes_once_per_machine(tiny_checkpoint, tmp_path,
                                                                                          monkeypatch, caplog):
    import logging

    from imagecoding.clip import precision

    assert precision.choose({"fp32": {"images_per_second": 10, "min_cosine": 1.0},
                             "bf16": {"images_per_second": 30, "min_cosine": 0.99995},
                             "int8": {"images_per_second": 40, "min_cosine": 0.9995}}) == "bf16"
    assert precision.choose({"fp32": {"images_per_second": 10, "min_cosine": 1.0},
                             "int8": {"images_per_second": 8, "min_cosine": 1.0}}) == "fp32"  # never slower than fp32
    spec = ModelSpec(MODEL_NAME, str(tiny_checkpoint), str(MODEL_CONFIG))
    description = fetch_weights(spec)
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    with caplog.at_level(logging.INFO):
        record = precision.resolve_auto(spec, description, None, tmp_path, "cpu", 1)
    assert set(record["results"]) == {"fp32", "int8"}  # no emulated bf16 on a CPU without it
    assert record["chosen"] == precision.choose(record["results"])
    assert record["results"]["fp32"]["min_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert "clip.precision auto chose" in caplog.text and "images/s" in caplog.text
    calls = []
    monkeypatch.setattr(precision, "probe", lambda *args: calls.append(args))
    assert precision.resolve_auto(spec, description, None, tmp_path, "cpu", 1) == record and not calls
    monkeypatch.setattr(precision, "native_bf16", lambda: True)  # another machine: its own probe
    assert precision.candidates("cpu") == ["fp32", "bf16", "int8"] and precision.candidates("cuda") == ["fp32"]


def test_loader_settings_follow_the_device_and_the_jobs_cores():
    assert loader_settings("cpu", 8, None, None) == (32, 0)  # 0: a decoding thread, no worker processes
    assert loader_settings("cuda", 8, None, None) == (256, 7)
    assert loader_settings("cuda", 8, 64, 2) == (64, 2)


@pytest.mark.parametrize("config, name", [(MODEL_CONFIG, MODEL_NAME), (COCA_CONFIG, COCA_NAME)], ids=["clip", "coca"])
def test_loading_from_the_resolved_checkpoint_gives_open_clips_model(config, name, tiny_checkpoint, tiny_coca_checkpoint):
    import torch

    checkpoint = tiny_checkpoint if name == MODEL_NAME else tiny_coca_checkpoint
    spec = ModelSpec(name, str(checkpoint), str(config))
    usual, preprocess, _ = load_clip(spec)
    fast, fast_preprocess, _ = load_clip(spec, checkpoint=str(checkpoint))
    for (key, a), (_, b) in zip(sorted(usual.state_dict().items()), sorted(fast.state_dict().items())):
        # (open_clip leaves a few CoCa tensors uninitialised, so the tiny checkpoint may hold NaNs: equal NaNs count)
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=key)
    assert str(fast_preprocess) == str(preprocess)
    draws = []
    for _ in range(2):  # random initialisation works again afterwards: seeded draws repeat
        torch.manual_seed(3)
        draws.append(torch.nn.Linear(8, 8).weight.clone())
    assert torch.equal(*draws) and draws[0].abs().sum() > 0


def test_the_openvino_backend_embeds_as_torch_does_and_converts_once(tiny_checkpoint, tmp_path, caplog):
    import logging

    from imagecoding.clip.backends import choose_backend, converted_path, with_openvino
    from imagecoding.clip.model import weights_key
    from imagecoding.weights import WeightsUnavailable

    spec = ModelSpec(MODEL_NAME, str(tiny_checkpoint), str(MODEL_CONFIG))
    items = [(str(i), str(p)) for i, p in enumerate(gps_photos(tmp_path / "photos", 40, seed=4, size=(64, 64)))]
    model, preprocess, _ = load_clip(spec)
    exact = np.concatenate([e for _, e, _ in embed_batches(model, preprocess, items, workers=0, batch_size=16)])
    key = weights_key(spec)
    with caplog.at_level(logging.INFO):
        converted = with_openvino(model, "fp32", tmp_path / "store", key, 32, 1)
    assert converted_path(tmp_path / "store", key).is_file() and "converted the image tower" in caplog.text
    ours = np.concatenate([e for _, e, _ in embed_batches(converted, preprocess, items, workers=0, batch_size=16)])
    assert ours.shape == exact.shape and (ours * exact).sum(axis=1).min() > 0.99999  # exact: the same embeddings
    caplog.clear()
    with caplog.at_level(logging.INFO):
        with_openvino(load_clip(spec)[0], "fp32", tmp_path / "store", key, 32, 1)
    assert "converted" not in caplog.text  # the kept IR is compiled, not converted again
    assert choose_backend("auto", "cpu", "fp32") == "openvino" and choose_backend("auto", "cpu", "int8") == "torch"
    assert choose_backend("auto", "cuda", "fp32") == "torch" and choose_backend("torch", "cpu", "fp32") == "torch"
    with pytest.raises(WeightsUnavailable, match="clip.backend: torch"):
        choose_backend("openvino", "cpu", "int8")
    described = fetch_weights(spec, backend="openvino")
    assert described["store_key"] == weights_key(spec) + "__openvino" and described["backend"] == "openvino"
