"""CPU precision modes of the image tower, the detector and CoCa, side by side in one run.

ViT-B-32 with random weights (the default model's real compute, nothing to download), batches of 32
synthetic images: images per second of encode_image in fp32, int8 and bf16 (a cast, not autocast) and on
OpenVINO (f32 and its bf16 hint, with the one-off conversion timed), as medians of interleaved repeats,
with each mode's lowest cosine to fp32; then what `clip.precision: auto`
chooses on this machine and how long its probe takes.

The detector (the default fasterrcnn_mobilenet_v3_large_320_fpn, random weights whose class scores are
spread so that detections pass the 0.5 threshold) on the example images through the workflow's own
loader: torchvision's model as published (the step before this work), then each mode of
signals.objects, with the share of images whose detections match the published model's.

CoCa (coca_ViT-B-32, random weights) captions batches whose rows end at different, trained-like lengths
(a wrapper says END after each row's length; random weights never would): decoded as before this work
(every row until the last ends, every position projected onto the vocabulary), now (finished rows leave
the batch, the last position projected), in int8, and at the full maximum length.

    .venv/bin/python bench/precision.py [--repeats 5] [--skip-clip] [--skip-detector] [--skip-coca]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "scripts"), str(REPO / "bench")]
DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"


def vit_rates(repeats: int) -> tuple[dict, dict]:
    import open_clip
    import torch

    from imagecoding.clip.model import ModelSpec, load_clip, native_bf16
    from imagecoding.clip.precision import probe_images

    scratch = Path(tempfile.mkdtemp(prefix="precision-"))
    checkpoint = scratch / "vit-b-32.pt"
    torch.manual_seed(0)
    torch.save(open_clip.create_model("ViT-B-32", pretrained=None).state_dict(), checkpoint)
    spec = ModelSpec("ViT-B-32", str(checkpoint))
    images = probe_images(224, 32, seed=3)
    models = {mode: load_clip(spec, precision=mode, checkpoint=str(checkpoint))[0] for mode in ("fp32", "int8", "bf16")}
    from imagecoding.clip.backends import with_openvino
    from imagecoding.openvino_ir import available
    from imagecoding.clip.model import weights_key

    conversion = None
    if available():
        started = time.perf_counter()  # conversion and compilation: what a first run pays once per model
        models["openvino f32"] = with_openvino(load_clip(spec, checkpoint=str(checkpoint))[0], "fp32", scratch / "store",
                                               weights_key(spec), 224, torch.get_num_threads())
        conversion = time.perf_counter() - started
        models["openvino bf16 hint"] = with_openvino(load_clip(spec, checkpoint=str(checkpoint))[0], "bf16",
                                                     scratch / "store", weights_key(spec), 224, torch.get_num_threads())
    seconds = {mode: [] for mode in models}
    features = {}
    with torch.inference_mode():
        for mode, model in models.items():  # warm-up
            features[mode] = torch.nn.functional.normalize(
                model.encode_image(images.to(next(model.visual.parameters()).dtype)).float(), dim=-1)
        for _ in range(repeats):  # interleaved: each round times every mode once
            for mode, model in models.items():
                batch = images.to(next(model.visual.parameters()).dtype)
                started = time.perf_counter()
                model.encode_image(batch)
                seconds[mode].append(time.perf_counter() - started)
    rates = {mode: {"rate": len(images) / statistics.median(s),
                    "cosine": float((features[mode] * features["fp32"]).sum(dim=1).min())} for mode, s in seconds.items()}
    from imagecoding.clip.model import fetch_weights
    from imagecoding.clip.precision import resolve_auto

    started = time.perf_counter()
    record = resolve_auto(spec, fetch_weights(spec), None, scratch / "store", "cpu", torch.get_num_threads())
    record["seconds"] = time.perf_counter() - started
    record["native_bf16"] = native_bf16()
    record["openvino_conversion_seconds"] = conversion
    return rates, record


class EndsAt:
    """CoCa whose row says END once its caption has the length written in its first pixel: trained-like caption
    lengths on random weights (which never say END), through the library's own decoding loop. With
    `every_position`, the decoder is out of the loop's sight, so it projects every position as before."""

    def __init__(self, model, every_position: bool = False):
        self.model = model
        if not every_position:
            self.text_decoder = model.text_decoder  # decoding projects the last position only, as for the model

    def _encode_image(self, images):
        return self.model._encode_image(images)

    def __call__(self, images, text, **kwargs):
        from imagecoding.signals.captions import END

        out = self.model(images, text, **kwargs)
        done = images[:, 0, 0, 0].round().long() <= text.shape[1] - 1
        out["logits"][done, -1, END] = float("inf")
        return out


def coca_rates(repeats: int, batch: int = 16, max_length: int = 30) -> tuple[dict, list[int]]:
    """Captions per second at the default maximum length: today's figure (random weights: every row to the maximum,
    every position projected), trained-like lengths as decoded before this work, now, and now in int8."""
    import copy

    import numpy as np
    import open_clip
    import torch

    from imagecoding.signals.captions import coca_precision, generate_tokens

    torch.manual_seed(0)
    model = open_clip.create_model("coca_ViT-B-32", pretrained=None).eval()
    with torch.no_grad():  # open_clip starts the vocabulary projection at zero; give it a trained-like spread
        model.text_decoder.text_projection.normal_(0, model.text_decoder.text_projection.shape[0] ** -0.5)
    fast = coca_precision(copy.deepcopy(model), "int8", "cpu")
    lengths = np.random.default_rng(0).integers(8, 17, batch)  # 8 to 16 tokens, as COCO-trained captions run

    def images(ends):
        tensors = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        tensors[:, 0, 0, 0] = torch.as_tensor(ends, dtype=torch.float)
        return tensors

    runs = {
        f"full length {max_length}, before (today's figure: random weights never end)": (EndsAt(model, True), images([99] * batch)),
        "trained-like lengths, before: the whole batch to its longest caption": (EndsAt(model, True), images([lengths.max()] * batch)),
        "trained-like lengths, fp32 now: finished rows leave, last position projected": (EndsAt(model), images(lengths)),
        "trained-like lengths, int8 now (signals.captions.precision: int8)": (EndsAt(fast), images(lengths)),
    }
    seconds = {name: [] for name in runs}
    tokens = {}
    with torch.inference_mode():
        for _ in range(repeats):
            for name, (wrapped, tensors) in runs.items():
                started = time.perf_counter()
                tokens[name] = generate_tokens(wrapped, tensors, max_length=max_length, min_length=0, repetition_penalty=1.0)
                seconds[name].append(time.perf_counter() - started)
    names = list(runs)
    same = {name: float((tokens[name][:, 1:9] == tokens[names[2]][:, 1:9]).all(dim=1).float().mean() * 100) for name in names[2:]}
    return {name: {"rate": batch / statistics.median(s), "same": same.get(name)} for name, s in seconds.items()}, [int(x) for x in lengths]


def detector_rates(repeats: int, count: int = 56) -> tuple[dict, float]:
    """Images per second of the detector step's own loop (decode, model, rows) in each mode; each mode's lowest
    cosine to the published model's backbone features (two example images) and box-head class logits (64 pooled
    regions); and the seconds the OpenVINO conversion takes once."""
    import torch
    from torchvision.models import get_model

    from imagecoding.signals.objects import DetectorSpec, detect_tables, fetch_detector, load_detector, prepare_detector
    from signals_throughput import example_items

    items = example_items(count)
    scratch = Path(tempfile.mkdtemp(prefix="detector-"))
    torch.manual_seed(0)
    reference = get_model(DETECTOR, weights=None, weights_backbone=None, num_classes=91).eval()
    torch.save(reference.state_dict(), scratch / "detector.pth")
    spec = DetectorSpec(DETECTOR, str(scratch / "detector.pth"))
    sha = fetch_detector(spec)["weights_sha256"]
    threads = torch.get_num_threads()

    def mode(precision, backend, fold=True):
        model, preprocess, categories, min_side = load_detector(spec, min_score=0.5, fold=fold)
        return prepare_detector(model, spec, precision, backend, "cpu", sha, scratch, min_side, threads), preprocess, categories, min_side

    models = {"fp32, torchvision's model as published (before this work)": mode("fp32", "torch", fold=False),
              "fp32, norms folded, channels-last (now the default)": mode("fp32", "torch"),
              "int8 box head (precision: int8)": mode("int8", "torch")}
    started = time.perf_counter()
    models["OpenVINO backbone (backend: openvino), exact"] = mode("fp32", "openvino")
    conversion = time.perf_counter() - started  # once per weights; later runs compile the kept IR
    models["int8 + OpenVINO (the fast mode)"] = mode("int8", "openvino")
    seconds = {name: [] for name in models}
    from PIL import Image

    preprocess = next(iter(models.values()))[1]
    pictures = [preprocess(Image.open(path).convert("RGB")) for _, path in items[:2]]
    pooled = torch.rand(64, 256, 7, 7, generator=torch.Generator().manual_seed(2))  # what roi_align hands the head
    outputs = {}
    with torch.inference_mode():
        for name, (model, preprocess, categories, min_side) in models.items():
            batch = model.transform(pictures)[0].tensors
            features = torch.cat([value.flatten(1) for value in model.backbone(batch).values()], dim=1)
            outputs[name] = features, model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))[0]
        for _ in range(repeats):
            for name, (model, preprocess, categories, min_side) in models.items():
                started = time.perf_counter()
                rows = sum(t.num_rows for t in detect_tables(model, preprocess, categories, items, 0.5, min_side,
                                                              batch_size=4, workers=1))
                assert rows == len(items)
                seconds[name].append(time.perf_counter() - started)
    first = outputs[next(iter(models))]
    cosine = torch.nn.functional.cosine_similarity
    return {name: {"rate": len(items) / statistics.median(s),
                   "features": min(1.0, float(cosine(outputs[name][0], first[0]).min())),
                   "logits": min(1.0, float(cosine(outputs[name][1], first[1]).min()))} for name, s in seconds.items()}, conversion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-clip", action="store_true")
    parser.add_argument("--skip-detector", action="store_true")
    parser.add_argument("--skip-coca", action="store_true")
    args = parser.parse_args()
    import torch

    from imagecoding.clip.model import native_bf16

    print(f"{os.cpu_count()} cores, torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {native_bf16()}; medians of {args.repeats} interleaved repeats")
    if not args.skip_clip:
        rates, record = vit_rates(args.repeats)
        print("\nViT-B-32 image tower, batches of 32")
        print("| mode | images/s | vs fp32 | lowest cosine to fp32 |")
        print("|---|---|---|---|")
        for mode, found in rates.items():
            print(f"| {mode} | {found['rate']:.1f} | {found['rate'] / rates['fp32']['rate']:.2f}x | {found['cosine']:.6f} |")
        if record["openvino_conversion_seconds"] is not None:
            print(f"\nOpenVINO: converting and compiling the tower took {record['openvino_conversion_seconds']:.1f} s (once "
                  "per model; later runs compile the kept IR)")
        probed = ", ".join(f"{m} {r['images_per_second']:.1f}/s" for m, r in record["results"].items())
        print(f"\nclip.precision auto chose {record['chosen']} in {record['seconds']:.1f} s (probe: {probed})")
    if not args.skip_detector:
        found, conversion = detector_rates(args.repeats)
        print(detector_table(found, conversion))
    if not args.skip_coca:
        coca, lengths = coca_rates(max(1, args.repeats // 2))
        print(coca_table(coca, lengths))
    print(f"\ncommand: {' '.join(shlex.quote(a) for a in [sys.executable.replace(str(REPO) + '/', ''), *sys.argv])}")


def detector_table(found: dict, conversion: float) -> str:
    before = next(iter(found.values()))["rate"]
    lines = [f"\n{DETECTOR}, the example images through the step's loader, batches of 4, min score 0.5",
             "| mode | images/s | vs before | lowest cosine to before: backbone features | box-head logits |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {r['rate']:.1f} | {r['rate'] / before:.2f}x | {r['features']:.6f} | {r['logits']:.6f} |"
              for name, r in found.items()]
    lines.append(f"\nOpenVINO: converting and compiling the backbone took {conversion:.1f} s (once per weights)")
    return "\n".join(lines)


def coca_table(found: dict, lengths: list[int]) -> str:
    full = next(iter(found.values()))["rate"]
    lines = [f"\nCoCa coca_ViT-B-32, batch of {len(lengths)}, caption lengths {sorted(lengths)} tokens",
             "| decoding | images/s | vs today's full length | first 8 tokens as fp32 now |", "|---|---|---|---|"]
    for name, r in found.items():
        same = "" if r["same"] is None else f"{r['same']:.0f}%"
        lines.append(f"| {name} | {r['rate']:.2f} | {r['rate'] / full:.2f}x | {same} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
