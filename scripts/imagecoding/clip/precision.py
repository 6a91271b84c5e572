"""`clip.precision: auto`: one short probe per machine and model picks the fastest mode that stays exact enough.

The probe embeds a few batches of fixed synthetic images in every mode this machine can run fast (fp32;
bf16 only where the CPU computes it natively; int8 on CPUs), measures each mode's images per second and
the lowest cosine of its embeddings to fp32's, and keeps the fastest mode whose lowest cosine is at least
MIN_COSINE. fp32 is always a candidate, so a machine never ends up slower than in fp32. The result is
cached beside the embedding stores, keyed by the machine (CPU, torch, threads) and the model's weights:
the next run, and every run after, reads it instead of probing again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np

from ..outputs import write_json
from .model import ModelSpec, load_clip, native_bf16, slug

log = logging.getLogger(__name__)

MIN_COSINE = 0.9999
PROBE_IMAGES = 16
PROBE_REPEATS = 3


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key(threads: int) -> str:
    """What a probe's rates depend on besides the model: the CPU, its instruction set as torch sees it, torch, threads."""
    import torch

    text = f"{cpu_name()}|{torch.backends.cpu.get_cpu_capability()}|bf16={native_bf16()}|torch {torch.__version__}|{threads}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def probe_images(size: int, count: int = PROBE_IMAGES, seed: int = 0):
    """Smooth synthetic images, already normalised as CLIP's preprocessing leaves them: the same on every run."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(count, 3, 8, 8, generator=generator)
    fine = 0.3 * torch.randn(count, 3, size, size, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False) + fine


def candidates(device: str) -> list[str]:
    """The modes worth probing on this device: bf16 only with native support, int8 only on a CPU."""
    if device != "cpu":
        return ["fp32"]
    return ["fp32"] + (["bf16"] if native_bf16() else []) + ["int8"]


def measure(model, images, repeats: int = PROBE_REPEATS) -> tuple[float, np.ndarray]:
    """(images per second, the median of `repeats` timed passes after a warm-up; the L2-normalised embeddings)."""
    import torch

    from .model import image_dtype

    batch = images.to(image_dtype(model))
    with torch.inference_mode():
        model.encode_image(batch)  # warm-up: one-off allocations and kernel choices
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            features = model.encode_image(batch)
            seconds.append(time.perf_counter() - started)
    features = torch.nn.functional.normalize(features.float(), dim=-1).numpy()
    return len(images) / float(np.median(seconds)), features


def choose(results: dict[str, dict], min_cosine: float = MIN_COSINE) -> str:
    """The fastest mode whose lowest cosine to fp32 is at least `min_cosine` (fp32 itself always qualifies)."""
    allowed = {mode: r for mode, r in results.items() if mode == "fp32" or r["min_cosine"] >= min_cosine}
    return max(allowed, key=lambda mode: allowed[mode]["images_per_second"])


def probe(spec: ModelSpec, checkpoint: str | None, cache_dir: str | None, device: str, size: int) -> dict[str, dict]:
    """Every candidate mode's rate and lowest cosine to fp32 on the probe images."""
    images = probe_images(size)
    results, reference = {}, None
    for mode in candidates(device):
        model = load_clip(spec, device=device, cache_dir=cache_dir, precision=mode, checkpoint=checkpoint)[0]
        rate, features = measure(model, images.to(device))
        reference = features if reference is None else reference
        cosine = float((features * reference).sum(axis=1).min())
        results[mode] = {"images_per_second": round(rate, 2), "min_cosine": round(cosine, 7)}
        del model
    return results


def resolve_auto(spec: ModelSpec, description: dict, cache_dir: str | None, store_dir: str | Path, device: str,
                 threads: int) -> dict:
    """The probe's record for this machine and model (cached under store_dir/precision_probes): its rates,
    cosines, the mode chosen and where the record lives."""
    import torch

    torch.set_num_threads(max(1, threads))
    key = f"{machine_key(threads)}__{slug(description['store_key'])}__{device}"
    path = Path(store_dir) / "precision_probes" / f"{key}.json"
    if path.is_file():
        record = json.loads(path.read_text())
        log.info("clip.precision auto: %s, as probed on this machine before (%s)", record["chosen"], path)
        return record
    started = time.perf_counter()
    results = probe(spec, description["checkpoint"], cache_dir, device, description["input_size"])
    chosen = choose(results)
    record = {"chosen": chosen, "min_cosine_allowed": MIN_COSINE, "results": results, "cpu": cpu_name(),
              "native_bf16": native_bf16(), "threads": threads, "device": device, "torch": torch.__version__,
              "probe_seconds": round(time.perf_counter() - started, 2), "path": str(path)}
    write_json(path, record)
    log.info("clip.precision auto chose %s on this machine (%s, %d threads), probed in %.1f s:\n%s", chosen, cpu_name(),
             threads, record["probe_seconds"],
             "\n".join(f"  {mode}: {r['images_per_second']:.1f} images/s, lowest cosine to fp32 {r['min_cosine']:.6f}"
                       for mode, r in results.items()))
    return record
