"""Objects: a torchvision COCO detector's labels, boxes and scores per image, and how many people it shows."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from ..images import DEFAULT_MAX_PIXELS, file_sha256, image_batches
from ..weights import WeightsUnavailable, offline
from .run import loader_failure, rows_table

log = logging.getLogger(__name__)

SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("labels", pa.list_(pa.string())),
        ("scores", pa.list_(pa.float32())),
        ("boxes", pa.list_(pa.list_(pa.float32(), 4))),  # x0, y0, x1, y1 as fractions of width and height
        ("count", pa.int32()),
        ("person_count", pa.int32()),
        ("summary", pa.string()),  # "person ×3, flag": what the ensemble prompt and merged.csv show
        ("status", pa.string()),
        ("error", pa.string()),
    ]
)
MERGE_COLUMNS = ["count", "person_count", "summary"]


@dataclass(frozen=True)
class DetectorSpec:
    """A torchvision detection model and its weights: a torchvision weights name, a local file, or none (random)."""

    model: str
    weights: str | None = "DEFAULT"

    @property
    def weights_is_file(self) -> bool:
        return bool(self.weights) and (self.weights.endswith((".pth", ".pt")) or "/" in self.weights)

    def weights_enum(self):
        """The torchvision weights entry: categories and preprocessing even for a local file or random weights."""
        from torchvision.models import get_model_weights, list_models
        from torchvision.models import detection

        if self.model not in list_models(module=detection):
            raise WeightsUnavailable(
                f"signals.objects.model: '{self.model}' is not a torchvision detection model. Choose one of "
                f"{', '.join(list_models(module=detection))}."
            )
        weights = get_model_weights(self.model)
        if self.weights and not self.weights_is_file:
            try:
                return weights[self.weights] if self.weights != "DEFAULT" else weights.DEFAULT
            except KeyError:
                raise WeightsUnavailable(
                    f"signals.objects.weights: '{self.weights}' is not a weights name of {self.model}. Use DEFAULT, "
                    f"one of {', '.join(w.name for w in weights)}, a local .pth file, or null for random weights."
                ) from None
        return weights.DEFAULT


def _hub_checkpoints(cache_dir: str | None) -> Path:
    import torch

    return Path(cache_dir) / "torch" / "checkpoints" if cache_dir else Path(torch.hub.get_dir()) / "checkpoints"


def checkpoint_path(spec: DetectorSpec, cache_dir: str | None = None) -> Path | None:
    """Where the weights file is (or will be, once fetched); None for random weights."""
    if not spec.weights:
        return None
    if spec.weights_is_file:
        return Path(spec.weights)
    return _hub_checkpoints(cache_dir) / Path(spec.weights_enum().url).name


def fetch_detector(spec: DetectorSpec, cache_dir: str | None = None) -> dict:
    """Download the weights if they are not cached yet (the one networked step) and describe them."""
    path = checkpoint_path(spec, cache_dir)
    if path is not None and not path.is_file():
        if spec.weights_is_file:
            raise WeightsUnavailable(f"signals.objects.weights: no file at '{path}'.")
        if offline():
            raise WeightsUnavailable(_missing_message(spec, path, "HF_HUB_OFFLINE is set, so nothing is downloaded"))
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(spec.weights_enum().url, str(path), progress=False)
        except Exception as exc:  # no network, a proxy, a full disk: say which and what to do
            raise WeightsUnavailable(_missing_message(spec, path, f"the download failed ({exc})")) from exc
    return {
        "model": spec.model,
        "weights": spec.weights,
        "checkpoint": str(path) if path else None,
        "weights_sha256": file_sha256(path) if path else None,
        "categories": list(spec.weights_enum().meta["categories"]),
    }


def _missing_message(spec: DetectorSpec, path: Path, why: str) -> str:
    return (
        f"The detector weights signals.objects.model='{spec.model}', weights='{spec.weights}' are not at {path}, "
        f"and {why}. Fix, either: run `snakemake models` once on a machine with internet (a cluster's login "
        "node), which fetches every configured model into models.cache_dir; or download "
        f"{spec.weights_enum().url} elsewhere and set signals.objects.weights to its local path."
    )


def load_detector(spec: DetectorSpec, cache_dir: str | None = None, device: str = "cpu", min_score: float | None = None,
                  fold: bool = True):
    """(model in eval mode, preprocessing, category names, shorter side the model resizes to); never downloads.

    With `min_score`, the model's own score cut-off follows it, so a threshold below torchvision's
    default (0.05) keeps the detections it would otherwise drop before we see them. The batch norms are
    folded into their convolutions (exact) unless `fold` is False: torchvision's model as published,
    the benchmarks' baseline.
    """
    import torch
    from torchvision.models import get_model

    enum = spec.weights_enum()
    categories = list(enum.meta["categories"])
    model = get_model(spec.model, weights=None, weights_backbone=None, num_classes=len(categories))
    path = checkpoint_path(spec, cache_dir)
    if path is None:
        log.warning("signals.objects.weights is empty: the detector has RANDOM weights; use this only for tests.")
    elif not path.is_file():
        raise WeightsUnavailable(_missing_message(spec, path, "model steps never download"))
    else:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    if min_score is not None:
        for part in (getattr(model, "roi_heads", None), model):
            if part is not None and hasattr(part, "score_thresh"):
                part.score_thresh = min(part.score_thresh, min_score)
    model.eval().to(device)
    if fold:
        fold_batchnorm(model)
        if device == "cpu":
            model.backbone.to(memory_format=torch.channels_last)  # oneDNN's faster layout for these convolutions
    return model, enum.transforms(), categories, min(model.transform.min_size)


PRECISIONS = ("fp32", "int8")
BACKENDS = ("torch", "openvino")


def fold_batchnorm(model):
    """Each convolution that batch norm follows becomes one convolution carrying the norm's scale and shift.

    In eval mode this is the same function up to float rounding, with one pass over every feature map fewer.
    """
    import torch
    from torchvision.ops.misc import Conv2dNormActivation, FrozenBatchNorm2d

    for block in model.modules():
        if (isinstance(block, Conv2dNormActivation) and len(block) > 1 and isinstance(block[0], torch.nn.Conv2d)
                and isinstance(block[1], (torch.nn.BatchNorm2d, FrozenBatchNorm2d))):
            block[0] = torch.nn.utils.fusion.fuse_conv_bn_eval(block[0], block[1])
            block[1] = torch.nn.Identity()
    return model


def quantize_heads(model):
    """`precision: int8`: int8 dynamic quantisation of the linear layers (Faster R-CNN's box head, about a
    quarter of its fp32 time on a CPU); the backbone's convolutions stay fp32. Detectors whose heads are convolutions gain nothing."""
    import torch

    from ..clip.model import quantize

    heads = getattr(model, "roi_heads", None)
    if heads is None or not any(type(part) is torch.nn.Linear for part in heads.modules()):
        log.warning("signals.objects.precision int8: %s has no linear box head, so int8 changes nothing; use fp32.",
                    type(model).__name__)
        return model
    return quantize(model, ("roi_heads",))


def backbone_path(store_dir: str | Path, spec: DetectorSpec, weights_sha256: str) -> Path:
    """Where the detector backbone converted for OpenVINO is kept: beside the signal stores, per weights and version."""
    from ..openvino_ir import version
    from ..clip.model import slug

    return Path(store_dir) / "openvino" / f"objects-{slug(spec.model)}-{weights_sha256[:16]}__ov{version()}" / "backbone.xml"


def openvino_backbone(compiled, out_channels: int):
    """The detector's backbone (feature pyramid included) as a torch module running OpenVINO's compiled CPU model;
    the proposals, box head and post-processing stay torch."""
    from collections import OrderedDict

    import torch

    class OpenVINOBackbone(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.out_channels = out_channels
            self._request = compiled.create_infer_request()

        def forward(self, images):
            outputs = self._request.infer({0: images.float().contiguous().numpy()})
            return OrderedDict((port.get_any_name(), torch.from_numpy(outputs[port].copy())) for port in compiled.outputs)

    return OpenVINOBackbone()


def with_openvino(model, spec: DetectorSpec, weights_sha256: str | None, store_dir: str | Path, min_side: int, threads: int):
    """The detector with its backbone on OpenVINO (f32, exact). Converted once per weights and kept under the
    signal stores; random weights (tests) are converted in memory, since every load draws new ones."""
    import warnings

    import openvino as ov
    import torch

    from ..openvino_ir import available, compile_ir, save_ir

    if not available():
        raise WeightsUnavailable("signals.objects.backend: openvino is not installed in this environment; install the "
                                 "pinned environment again (make install), or set signals.objects.backend: torch.")
    path = backbone_path(store_dir, spec, weights_sha256) if weights_sha256 else None
    if path is None or not path.is_file():
        started = time.perf_counter()
        example = torch.zeros(1, 3, min_side, min_side)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch 2.14 deprecates the tracing OpenVINO converts from
            converted = ov.convert_model(model.backbone.float(), example_input=example,
                                         input=[ov.PartialShape([-1, 3, -1, -1])])  # any batch and padded size
        if path is not None:
            save_ir(converted, path)
        log.info("converted the detector backbone to OpenVINO in %.1f s%s", time.perf_counter() - started,
                 f": {path}" if path else " (random weights: not kept)")
    compiled = compile_ir(path if path is not None else converted, "f32", threads, "the detector backbone")
    model.backbone = openvino_backbone(compiled, model.backbone.out_channels)
    return model


def prepare_detector(model, spec: DetectorSpec, precision: str, backend: str, device: str, weights_sha256: str | None,
                     store_dir: str | Path, min_side: int, threads: int):
    """The loaded detector in its configured precision and backend (both CPU-only beyond fp32 on torch)."""
    if precision not in PRECISIONS or backend not in BACKENDS:
        raise WeightsUnavailable(f"signals.objects: precision '{precision}' and backend '{backend}' must be one of "
                                 f"{', '.join(PRECISIONS)} and {', '.join(BACKENDS)}.")
    if device != "cpu" and (precision, backend) != ("fp32", "torch"):
        raise WeightsUnavailable(f"signals.objects: precision {precision} and backend {backend} run on the CPU only; "
                                 f"on {device} use precision fp32 and backend torch.")
    if backend == "openvino":
        model = with_openvino(model, spec, weights_sha256, store_dir, min_side, threads)
    return quantize_heads(model) if precision == "int8" else model


def summary(labels: list[str]) -> str:
    """'person ×3, flag': labels by frequency, for prompts and merged.csv."""
    return ", ".join(f"{label} ×{n}" if n > 1 else label for label, n in Counter(labels).most_common())


def detection_row(image_id: str, detections: dict, categories: list[str], size: tuple[int, int], min_score: float) -> dict:
    width, height = size
    keep = detections["scores"] >= min_score
    labels = [categories[int(i)] for i in detections["labels"][keep]]
    boxes = detections["boxes"][keep].clone()
    boxes[:, 0::2] /= width
    boxes[:, 1::2] /= height
    return {
        "image_id": image_id,
        "labels": labels,
        "scores": [round(float(s), 4) for s in detections["scores"][keep]],
        "boxes": boxes.clamp(0, 1).tolist(),
        "count": len(labels),
        "person_count": labels.count("person"),
        "summary": summary(labels),
        "status": "ok",
        "error": None,
    }


def detect_tables(
    model,
    preprocess,
    categories: list[str],
    items: list[tuple[str, str]],
    min_score: float,
    min_side: int | None = None,
    device: str = "cpu",
    batch_size: int = 4,
    workers: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[pa.Table]:
    """Detection result tables batch by batch; images that fail to load are rows with their status."""
    import torch

    batches = image_batches(items, preprocess, batch_size, workers, min_side, max_pixels, stack=False)
    with torch.inference_mode():
        for ids, tensors, failures in batches:
            rows = [loader_failure(image_id, error) for image_id, error in failures]
            if tensors:
                outputs = model([t.to(device) for t in tensors])
                for image_id, tensor, output in zip(ids, tensors, outputs):
                    output = {key: value.cpu() for key, value in output.items()}
                    size = (tensor.shape[-1], tensor.shape[-2])
                    rows.append(detection_row(image_id, output, categories, size, min_score))
            yield rows_table(rows, SCHEMA)
