"""`clip.backend: openvino` (or auto, where it is installed): the image tower run by OpenVINO on the CPU, exact (f32) or, where the CPU computes
bfloat16 natively, with its bf16 precision hint.

The tower is traced once with torch, converted with `openvino.convert_model` and kept as IR (.xml/.bin) under
the embedding stores, keyed by the weights and the OpenVINO version; later runs compile the kept IR, which
takes well under a second. The text tower stays torch: phrases are encoded once and cached anyway.
The detector's backbone (signals/objects.py) is kept and compiled the same way.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..weights import WeightsUnavailable

log = logging.getLogger(__name__)


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def choose_backend(requested: str, device: str, precision: str) -> str:
    """clip.backend resolved: openvino where asked (or, for auto, where it is installed and runs this CPU mode), else torch."""
    if requested == "torch":
        return "torch"
    runs = device == "cpu" and precision in ("fp32", "bf16")
    if requested == "openvino":
        if not runs:
            raise WeightsUnavailable(f"clip.backend openvino runs fp32 and bf16 on a CPU, not {precision} on {device}; "
                                     "set clip.backend: torch (or auto).")
        if not available():
            raise WeightsUnavailable("clip.backend: openvino is not installed in this environment; install the pinned "
                                     "environment again (make install), or set clip.backend: torch.")
        return "openvino"
    return "openvino" if runs and available() else "torch"


def version() -> str:
    import importlib.metadata

    return importlib.metadata.version("openvino")


def converted_path(store_dir: str | Path, weights_key: str) -> Path:
    """Where the converted tower of one model's weights lives: beside the embedding stores, per OpenVINO version."""
    return Path(store_dir) / "openvino" / f"{weights_key}__ov{version()}" / "visual.xml"


def save_ir(converted, path: Path) -> None:
    """Save a converted OpenVINO model as IR at `path`, atomically: it is written into a folder of its own, which
    then takes its place, so a killed job leaves no half model and two jobs converting at once both succeed."""
    import shutil
    import uuid

    import openvino as ov

    folder = path.parent
    temporary = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp")
    temporary.mkdir(parents=True)
    ov.save_model(converted, temporary / path.name, compress_to_fp16=False)
    try:
        temporary.replace(folder)
    except OSError:  # another job converted it first
        shutil.rmtree(temporary, ignore_errors=True)


def compile_ir(path, hint: str, threads: int, what: str):
    """The kept IR at `path` (or a converted model in memory) compiled for this CPU with a precision hint (f32, bf16)."""
    import openvino as ov

    core = ov.Core()
    started = time.perf_counter()
    model = core.read_model(path) if isinstance(path, (str, Path)) else path
    compiled = core.compile_model(model, "CPU",
                                  {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": max(1, threads)})
    log.info("OpenVINO %s compiled %s (%s) in %.1f s", version(), what, hint, time.perf_counter() - started)
    return compiled


def convert(model, size: int, path: Path) -> None:
    """Trace the vision tower with one image of the model's input size and save it as OpenVINO IR."""
    import openvino as ov
    import torch

    import warnings

    started = time.perf_counter()
    example = torch.zeros(1, 3, size, size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates tracing; OpenVINO converts the trace
        traced = torch.jit.trace(model.visual.float(), example, check_trace=False)
        converted = ov.convert_model(traced)
    converted.reshape([-1, 3, size, size])  # any batch size
    save_ir(converted, path)
    log.info("converted the image tower to OpenVINO in %.1f s: %s", time.perf_counter() - started, path)


class OpenVINOImages:
    """A CLIP model whose encode_image runs OpenVINO's compiled tower; everything else is the torch model's."""

    def __init__(self, model, compiled, hint: str):
        self._model = model
        self._request = compiled.create_infer_request()
        self.hint = hint

    def encode_image(self, images):
        import torch

        output = self._request.infer({0: images.float().numpy()})[0]
        return torch.from_numpy(output.copy())

    def __getattr__(self, name):
        return getattr(self._model, name)


def with_openvino(model, precision: str, store_dir: str | Path, weights_key: str, size: int, threads: int):
    """The model with its image tower on OpenVINO: fp32 exact, bf16 through the precision hint. `model` is the
    fp32 torch model; `weights_key` names its weights (model.weights_key without mode suffixes)."""
    choose_backend("openvino", "cpu", precision)  # raises with the fix where it cannot run
    path = converted_path(store_dir, weights_key)
    if not path.is_file():
        convert(model, size, path)
    hint = "bf16" if precision == "bf16" else "f32"
    return OpenVINOImages(model, compile_ir(path, hint, threads, "the image tower"), hint)
