"""`clip.backend: openvino` (or auto, where it is installed): the image tower run by OpenVINO on the CPU, exact (f32) or, where the CPU computes
bfloat16 natively, with its bf16 precision hint.

The tower is traced once with torch, converted with `openvino.convert_model` and kept as IR (.xml/.bin) under
the embedding stores, keyed by the weights and the OpenVINO version; later runs compile the kept IR, which
takes well under a second. The text tower stays torch: phrases are encoded once and cached anyway.
Saving and compiling IR is openvino_ir.py's, which the detector's backbone (signals/objects.py) shares.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..openvino_ir import available, compile_ir, save_ir, version
from ..weights import WeightsUnavailable

log = logging.getLogger(__name__)


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


def converted_path(store_dir: str | Path, weights_key: str) -> Path:
    """Where the converted tower of one model's weights lives: beside the embedding stores, per OpenVINO version."""
    return Path(store_dir) / "openvino" / f"{weights_key}__ov{version()}" / "visual.xml"


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
