"""OpenVINO's CPU runtime for the models that can use it (CLIP's image tower, the detector's backbone): whether it
is installed, its version (part of every kept model's key), saving converted models as IR, and compiling them."""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def version() -> str:
    import importlib.metadata

    return importlib.metadata.version("openvino")


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


@functools.lru_cache(maxsize=1)
def shared_core():
    """The process's one OpenVINO Core. OpenVINO means a Core to serve a whole application, and a second Core in one
    process has crashed some builds (openvinotoolkit/openvino#35338), so every model a job or a test compiles shares it."""
    import openvino as ov

    return ov.Core()


def compile_ir(path, hint: str, threads: int, what: str):
    """The kept IR at `path` (or a converted model in memory) compiled for this CPU with a precision hint (f32, bf16)."""
    core = shared_core()
    started = time.perf_counter()
    model = core.read_model(path) if isinstance(path, (str, Path)) else path
    compiled = core.compile_model(model, "CPU",
                                  {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": max(1, threads)})
    log.info("OpenVINO %s compiled %s (%s) in %.1f s", version(), what, hint, time.perf_counter() - started)
    return compiled
