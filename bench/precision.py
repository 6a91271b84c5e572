"""CPU precision modes of the image tower, and CoCa's decoding, side by side in one run.

ViT-B-32 with random weights (the default model's real compute, nothing to download), batches of 32
synthetic images: images per second of encode_image in fp32, int8 and bf16 (a cast, not autocast) and on
OpenVINO (f32 and its bf16 hint, with the one-off conversion timed), as medians of interleaved repeats,
with each mode's lowest cosine to fp32; then what `clip.precision: auto`
chooses on this machine and how long its probe takes. CoCa (coca_ViT-B-32, random weights) captions
batches whose rows end at different, trained-like lengths (a wrapper says END after each row's length;
random weights never would), decoded the old way (every row until the last ends) and the new way
(finished rows leave the batch), and at the full maximum length.

    .venv/bin/python bench/precision.py [--repeats 5] [--skip-coca]
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
sys.path[:0] = [str(REPO / "scripts")]


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
    from imagecoding.clip.backends import available, with_openvino
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
    lengths on random weights (which never say END), through the library's own decoding loop."""

    def __init__(self, model):
        self.model = model

    def _encode_image(self, images):
        return self.model._encode_image(images)

    def __call__(self, images, text, **kwargs):
        from imagecoding.signals.captions import END

        out = self.model(images, text, **kwargs)
        done = images[:, 0, 0, 0].round().long() <= text.shape[1] - 1
        out["logits"][done, -1, END] = float("inf")
        return out


def coca_rates(repeats: int, batch: int = 16) -> tuple[dict, list[int]]:
    """Captions per second: at the full maximum length, and at trained-like lengths decoded the old way (the
    whole batch until its longest caption ends: every row as long as the longest) and the new way."""
    import numpy as np
    import open_clip
    import torch

    from imagecoding.signals.captions import generate_tokens

    torch.manual_seed(0)
    model = EndsAt(open_clip.create_model("coca_ViT-B-32", pretrained=None).eval())
    lengths = np.random.default_rng(0).integers(8, 17, batch)  # 8 to 16 tokens, as COCO-trained captions run
    def images(ends):
        tensors = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        tensors[:, 0, 0, 0] = torch.as_tensor(ends, dtype=torch.float)
        return tensors

    runs = {"full length 30 (random weights: today's figure)": images([99] * batch),
            "trained-like lengths, the whole batch to its longest caption (before)": images([lengths.max()] * batch),
            "trained-like lengths, finished rows leave the batch (now)": images(lengths)}
    seconds = {name: [] for name in runs}
    with torch.inference_mode():
        for _ in range(repeats):
            for name, tensors in runs.items():
                started = time.perf_counter()
                generate_tokens(model, tensors, max_length=30, min_length=0, repetition_penalty=1.0)
                seconds[name].append(time.perf_counter() - started)
    return {name: batch / statistics.median(s) for name, s in seconds.items()}, [int(x) for x in lengths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-coca", action="store_true")
    args = parser.parse_args()
    import torch

    rates, record = vit_rates(args.repeats)
    print(f"{os.cpu_count()} cores, torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {record['native_bf16']}; ViT-B-32 image tower, batches of 32, median of {args.repeats} interleaved")
    print("| mode | images/s | vs fp32 | lowest cosine to fp32 |")
    print("|---|---|---|---|")
    for mode, found in rates.items():
        print(f"| {mode} | {found['rate']:.1f} | {found['rate'] / rates['fp32']['rate']:.2f}x | {found['cosine']:.6f} |")
    if record["openvino_conversion_seconds"] is not None:
        print(f"\nOpenVINO: converting and compiling the tower took {record['openvino_conversion_seconds']:.1f} s (once per "
              "model; later runs compile the kept IR)")
    probed = ", ".join(f"{m} {r['images_per_second']:.1f}/s" for m, r in record["results"].items())
    print(f"\nclip.precision auto chose {record['chosen']} in {record['seconds']:.1f} s (probe: {probed})")
    if not args.skip_coca:
        coca, lengths = coca_rates(max(1, args.repeats // 2))
        print(f"\nCoCa coca_ViT-B-32, batch of {len(lengths)}, caption lengths {sorted(lengths)} tokens")
        print("| decoding | images/s | vs full length |")
        print("|---|---|---|")
        full = next(iter(coca.values()))
        for name, rate in coca.items():
            print(f"| {name} | {rate:.2f} | {rate / full:.2f}x |")
    print(f"\ncommand: {' '.join(shlex.quote(a) for a in [sys.executable.replace(str(REPO) + '/', ''), *sys.argv])}")


if __name__ == "__main__":
    main()
