"""Loading open_clip models from a zoo tag, the Hugging Face Hub, a local checkpoint or a custom config.

Three ways in, each doing no more than its step needs: `fetch_weights` resolves (downloading once) and
describes the weights without building a model; `load_clip` builds the whole model for embedding
images; `load_text_tower` builds only the text side for encoding phrases.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..images import file_sha256
from ..weights import WeightsUnavailable, reachable

HF_HUB_PREFIX = "hf-hub:"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """What identifies a CLIP model for caching: architecture, weights and preprocessing."""

    model: str
    pretrained: str | None
    model_config: str | None = None
    key: str = "clip"  # the config block it comes from, for messages (clip, signals.captions)

    @property
    def pretrained_is_file(self) -> bool:
        if not self.pretrained or self.pretrained.startswith(HF_HUB_PREFIX):
            return False
        return self.pretrained.endswith(CHECKPOINT_SUFFIXES) or "/" in self.pretrained or Path(self.pretrained).is_file()

    @property
    def uses_hub(self) -> bool:
        return self.model.startswith(HF_HUB_PREFIX) or bool(self.pretrained and self.pretrained.startswith(HF_HUB_PREFIX))


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "none"


PRECISIONS = ("fp32", "bf16", "int8")  # and `auto`, which a probe resolves to one of them (clip/precision.py)


def weights_key(spec: ModelSpec, checkpoint_sha256: str | None = None, draft: bool = False, precision: str = "fp32",
                backend: str = "torch") -> str:
    """Folder name of the embedding store for this model.

    A local checkpoint is named by its content hash, so moving the file keeps the cache and
    replacing its weights does not reuse stale embeddings. Draft-decoded JPEGs give slightly
    different pixels, bf16 or int8 a slightly different model, and another backend (OpenVINO) other
    rounding, so each gets its own store.
    """
    if spec.pretrained_is_file:
        weights = "file-" + (checkpoint_sha256 or file_sha256(spec.pretrained))[:16]
    else:
        weights = spec.pretrained or "random-init"
    suffix = ("__draft" if draft else "") + ("" if precision == "fp32" else f"__{precision}")
    suffix += "" if backend == "torch" else f"__{backend}"
    return f"{slug(spec.model)}__{slug(weights)}{suffix}"


def _bundled_config(name: str) -> dict | None:
    """An architecture shipped with open_clip, read without importing it (importing brings torch: seconds)."""
    found = importlib.util.find_spec("open_clip")
    for folder in (found.submodule_search_locations or []) if found else []:
        path = Path(folder) / "model_configs" / f"{name}.json"
        if path.is_file():
            return json.loads(path.read_text())
    return None


def _validate(spec: ModelSpec):
    """(open_clip, model name, weights tag or None) after checking the spec; every message names the key and fix."""
    import open_clip

    if spec.model_config:
        name = register_model_config(spec.model_config)
        if spec.model != name:
            raise WeightsUnavailable(
                f"{spec.key}.model is '{spec.model}' but {spec.key}.model_config '{spec.model_config}' defines "
                f"the model '{name}' (its file name); set {spec.key}.model: {name}."
            )
    model_name, pretrained = spec.model, spec.pretrained
    if pretrained and pretrained.startswith(HF_HUB_PREFIX):
        model_name, pretrained = pretrained, None
    if not model_name.startswith(HF_HUB_PREFIX) and model_name not in open_clip.list_models():
        raise WeightsUnavailable(
            f"{spec.key}.model: '{model_name}' is not an open_clip architecture. Use one of open_clip.list_models() "
            f"(e.g. ViT-B-32), an 'hf-hub:org/name' repository, or give {spec.key}.model_config."
        )
    if spec.pretrained_is_file and not Path(spec.pretrained).is_file():
        raise WeightsUnavailable(f"{spec.key}.pretrained: no checkpoint file at '{spec.pretrained}'.")
    if pretrained and not spec.pretrained_is_file:
        known = open_clip.list_pretrained_tags_by_model(model_name)
        if pretrained not in known:
            raise WeightsUnavailable(
                f"{spec.key}.pretrained: '{pretrained}' is not a known weights tag for {model_name}. "
                f"Known tags: {', '.join(known) or 'none'}; or give a local checkpoint file."
            )
    return open_clip, model_name, pretrained


def fetch_weights(spec: ModelSpec, cache_dir: str | None = None, draft: bool = False, precision: str = "fp32",
                  backend: str = "torch") -> dict:
    """Resolve the weights to a local file (downloading them once) and describe them; builds no model.

    A local checkpoint of a bundled or custom architecture needs neither torch nor open_clip.
    """
    architecture = None
    if spec.pretrained_is_file and not spec.uses_hub:
        if spec.model_config:
            if Path(spec.model_config).stem != spec.model:
                _validate(spec)  # raises with the fix
            architecture = json.loads(Path(spec.model_config).read_text())
        else:
            architecture = _bundled_config(spec.model)
        if not Path(spec.pretrained).is_file():
            raise WeightsUnavailable(f"{spec.key}.pretrained: no checkpoint file at '{spec.pretrained}'.")
        checkpoint = spec.pretrained
    if architecture is None:
        open_clip, model_name, pretrained = _validate(spec)
        if spec.uses_hub or pretrained:
            _cache_only_when_offline()
        try:
            if model_name.startswith(HF_HUB_PREFIX):
                from open_clip.factory import _get_hf_config
                from open_clip.pretrained import download_pretrained_from_hf

                repository = model_name[len(HF_HUB_PREFIX):]
                architecture = _get_hf_config(repository, cache_dir=cache_dir)["model_cfg"]
                checkpoint = download_pretrained_from_hf(repository, cache_dir=cache_dir)
            else:
                architecture = open_clip.get_model_config(model_name)
                checkpoint = spec.pretrained if spec.pretrained_is_file else None
                if pretrained and not spec.pretrained_is_file:
                    checkpoint = open_clip.download_pretrained(
                        open_clip.get_pretrained_cfg(model_name, pretrained), cache_dir=cache_dir
                    )
        except Exception as exc:  # no network, a proxy, a missing file: one message with the fixes
            raise WeightsUnavailable(_offline_message(spec, exc)) from exc
    size = architecture["vision_cfg"].get("image_size", 224)
    checkpoint_sha256 = file_sha256(checkpoint) if checkpoint else None
    return {
        "model": spec.model,
        "pretrained": spec.pretrained,
        "model_config": spec.model_config,
        "model_config_sha256": file_sha256(spec.model_config) if spec.model_config else None,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "weights_sha256": checkpoint_sha256,
        "draft": draft,
        "precision": precision,
        "backend": backend,
        "store_key": weights_key(spec, checkpoint_sha256, draft, precision, backend),
        "text_key": weights_key(spec, checkpoint_sha256) + "__phrases",
        "input_size": max(size) if isinstance(size, (list, tuple)) else int(size),
        "open_clip": importlib.metadata.version("open_clip_torch"),
    }


def read_state_dict(path: str | Path) -> dict:
    """A checkpoint's tensors, memory-mapped where the format allows, with training wrappers removed."""
    import torch

    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


class TextTower:
    """Only the text side of a CLIP model: phrases to L2-normalised embeddings."""

    def __init__(self, tower, tokenizer, logit_scale: float, device: str = "cpu"):
        self.tower = tower
        self.tokenizer = tokenizer
        self.logit_scale = logit_scale
        self.device = device

    def encode(self, phrases: list[str]):
        import torch

        with torch.inference_mode():
            features = self.tower(self.tokenizer(phrases).to(self.device))
            if isinstance(features, tuple):  # towers that also give token embeddings (CoCa): the pooled one
                features = features[0]
            return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()


def load_text_tower(description: dict, device: str = "cpu", cache_dir: str | None = None) -> TextTower:
    """The text tower of the model `fetch_weights` described, with only its own weights loaded.

    Scoring needs no vision tower: a scheme edit loads a fifth of ViT-B-32. Text towers open_clip
    builds from Hugging Face models fall back to the whole model.
    """
    import open_clip
    from open_clip.model import _build_text_tower

    spec = ModelSpec(description["model"], description["pretrained"], description["model_config"])
    _, model_name, _ = _validate(spec)
    if model_name.startswith(HF_HUB_PREFIX):
        from open_clip.factory import _get_hf_config

        architecture = _get_hf_config(model_name[len(HF_HUB_PREFIX):], cache_dir=cache_dir)["model_cfg"]
    else:
        architecture = open_clip.get_model_config(model_name)
    tokenizer = open_clip.get_tokenizer(model_name, cache_dir=cache_dir)
    if architecture["text_cfg"].get("hf_model_name"):
        model, _, _ = load_clip(spec, device, cache_dir)
        return TextTower(model.encode_text, tokenizer, float(model.logit_scale.exp()), device)
    tower = _build_text_tower(architecture["embed_dim"], architecture["text_cfg"], architecture.get("quick_gelu", False))
    checkpoint = description.get("checkpoint")
    if checkpoint:
        state = read_state_dict(checkpoint)
        prefix = "text." if architecture.get("custom_text") or any(k.startswith("text.") for k in state) else ""
        wanted = tower.state_dict().keys()
        own = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix) and key[len(prefix):] in wanted}
        missing = sorted(set(wanted) - set(own))
        if missing:
            raise WeightsUnavailable(
                f"{spec.key}.pretrained: the checkpoint {checkpoint} lacks the text weights {', '.join(missing[:5])}; "
                "is it a checkpoint of clip.model?"
            )
        tower.load_state_dict(own)
        logit_scale = float(state["logit_scale"].exp())
    else:
        log.warning("%s.pretrained is empty: the text tower has RANDOM weights; use this only to measure speed.", spec.key)
        logit_scale = math.exp(architecture.get("init_logit_scale", math.log(1 / 0.07)))
    return TextTower(tower.eval().to(device), tokenizer, logit_scale, device)


def native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX): elsewhere bf16 is emulated, and slow."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def to_bf16(model):
    """The vision tower, and the images it takes, in bfloat16 (a cast, not autocast, which measured no faster);
    the text tower stays fp32, so the phrases it encodes are the same in every mode."""
    import torch

    model.visual = model.visual.to(torch.bfloat16)
    return model


def image_dtype(model):
    """The dtype the vision tower takes its images in: bfloat16 after to_bf16, else float32."""
    import torch

    for parameter in model.visual.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


def quantize(model, towers: tuple[str, ...] = ("visual",)):
    """int8 dynamic quantisation of the linear layers of `towers` (the opt-in fast mode on CPUs): the vision
    tower for CLIP; CoCa's captions add its text tower and text decoder; the detector quantises its `roi_heads`.

    The first block's MLP input layer of each tower stays fp32: open_clip reads its weight's dtype to cast inputs.
    """
    import torch

    for name in towers:
        tower = getattr(model, name)
        layers = {path: torch.ao.quantization.default_dynamic_qconfig for path, part in tower.named_modules()
                  if type(part) is torch.nn.Linear and not path.endswith("resblocks.0.mlp.c_fc")}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's dynamic quantisation is deprecated in favour of torchao,
            # which measured slower here (docs/benchmarks.md); torch is pinned, so the API stays.
            setattr(model, name, torch.ao.quantization.quantize_dynamic(tower, layers, dtype=torch.qint8))
    return model


def resolve_device(requested: str = "auto") -> str:
    """`auto` picks cuda, then Apple's mps, then cpu."""
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def register_model_config(path: str | Path) -> str:
    """Make a custom open_clip config JSON known by its file stem, which is then its model name."""
    import open_clip

    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailable(f"model_config: no file at '{path}'.")
    open_clip.add_model_config(path)
    return path.stem


def hub_reachable(timeout: float = 5.0) -> bool:
    return reachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co"), timeout)


def _cache_only_when_offline() -> None:
    """Without a network, use cached weights or fail at once instead of retrying for a minute."""
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE and not hub_reachable():
        log.warning("The Hugging Face Hub cannot be reached; looking for the weights in the local cache only.")
        constants.HF_HUB_OFFLINE = True


def _offline_message(spec: ModelSpec, exc: BaseException) -> str:
    return (
        f"Cannot get the weights {spec.key}.model='{spec.model}', {spec.key}.pretrained='{spec.pretrained}': they are "
        "not in the local cache and the Hugging Face Hub cannot be reached (no internet, a proxy, or "
        "HF_HUB_OFFLINE=1).\n"
        "Fix, either:\n"
        "  - run once on a machine with internet access: the weights are then cached (in HF_HOME, or in "
        "models.cache_dir if set) and later runs work offline;\n"
        f"  - or download the checkpoint file elsewhere and set {spec.key}.pretrained to its local path, e.g. "
        f"{spec.key}.pretrained: /data/models/open_clip_pytorch_model.bin\n"
        f"Detail: {exc}"
    )


class _Quiet(logging.Filter):
    """Drops open_clip's 'no pretrained weights' warning while we build a model whose weights come next."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


@contextmanager
def _skipped_weight_init():
    """Build a model without drawing random weights that the checkpoint overwrites at once (transformers
    does the same): a second or more per build, most of ViT-B-32's construction time."""
    import torch

    names = [n for n in dir(torch.nn.init) if n.endswith("_") and not n.startswith("_")]
    saved = {name: getattr(torch.nn.init, name) for name in names}
    quiet = _Quiet()
    logging.getLogger().addFilter(quiet)
    for name in names:
        setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(torch.nn.init, name, function)
        logging.getLogger().removeFilter(quiet)


def _build_from_checkpoint(open_clip, model_name: str, pretrained: str, checkpoint: str, device: str, cache_dir):
    """(model, preprocess) from a plain state-dict file: no random init, weights memory-mapped and assigned.

    open_clip still reads the tag's own settings (preprocessing, activation); it only skips the loading.
    """
    with _skipped_weight_init():
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=pretrained, load_weights=False, cache_dir=cache_dir
        )
    model.load_state_dict(read_state_dict(checkpoint), strict=True, assign=True)
    return model.to(device), preprocess


def load_clip(
    spec: ModelSpec, device: str = "cpu", cache_dir: str | None = None, precision: str = "fp32", checkpoint: str | None = None
):
    """Return (model in eval mode, image preprocessing transform, tokenizer).

    `checkpoint`, the weights file `fetch_weights` resolved, lets a plain state dict load without
    open_clip's random initialisation; anything else (TorchScript archives, Hub models) takes open_clip's path.
    """
    open_clip, model_name, pretrained = _validate(spec)
    if not pretrained and not model_name.startswith(HF_HUB_PREFIX) and not spec.pretrained_is_file:
        log.warning(
            "%s.pretrained is empty: %s has RANDOM weights. Categories are meaningless; use this only "
            "to measure speed.",
            spec.key,
            model_name,
        )
    if spec.uses_hub or (pretrained and not spec.pretrained_is_file):
        _cache_only_when_offline()
    model = None
    if checkpoint and Path(checkpoint).is_file() and not model_name.startswith(HF_HUB_PREFIX):
        try:
            model, preprocess = _build_from_checkpoint(open_clip, model_name, pretrained, checkpoint, device, cache_dir)
        except Exception as exc:  # a TorchScript archive or renamed keys: open_clip's own loading copes
            log.info("loading %s the usual way (%s: %s)", checkpoint, type(exc).__name__, exc)
            model = None
    if model is None:
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name,
                pretrained=(spec.pretrained if spec.pretrained_is_file else pretrained) or None,
                device=device,
                cache_dir=cache_dir,
                require_pretrained=bool(pretrained or spec.pretrained_is_file),
            )
        except WeightsUnavailable:
            raise
        except (RuntimeError, OSError, ValueError) as exc:
            raise WeightsUnavailable(_offline_message(spec, exc)) from exc
    tokenizer = open_clip.get_tokenizer(model_name, cache_dir=cache_dir)
    model.eval()
    if precision == "int8":
        if device != "cpu":
            raise WeightsUnavailable(f"{spec.key}.precision: int8 runs on the CPU only; use fp32 on {device}.")
        model = quantize(model)
    elif precision == "bf16":
        if device == "cpu" and not native_bf16():
            log.warning("%s.precision: bf16 on a CPU without native bfloat16 (AVX512-BF16 or AMX) is emulated and slower "
                        "than fp32; use %s.precision: auto to pick the fastest mode this machine has.", spec.key, spec.key)
        model = to_bf16(model)
    elif precision != "fp32":
        raise WeightsUnavailable(f"{spec.key}.precision: '{precision}' is not one of {', '.join(PRECISIONS)}.")
    return model, preprocess, tokenizer


def input_size(model) -> int:
    """The side length the vision tower expects; used to pick a safe JPEG draft scale."""
    size = getattr(model.visual, "image_size", 224)
    return max(size) if isinstance(size, (tuple, list)) else int(size)
