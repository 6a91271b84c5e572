"""Loading open_clip models from a zoo tag, the Hugging Face Hub, a local checkpoint or a custom config."""

from __future__ import annotations

import logging
import os
import re
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


def weights_key(spec: ModelSpec, checkpoint_sha256: str | None = None, draft: bool = False) -> str:
    """Folder name of the embedding store for this model.

    A local checkpoint is named by its content hash, so moving the file keeps the cache and
    replacing its weights does not reuse stale embeddings. Draft-decoded JPEGs give slightly
    different pixels, so they get their own store.
    """
    if spec.pretrained_is_file:
        weights = "file-" + (checkpoint_sha256 or file_sha256(spec.pretrained))[:16]
    else:
        weights = spec.pretrained or "random-init"
    return f"{slug(spec.model)}__{slug(weights)}" + ("__draft" if draft else "")


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


def load_clip(spec: ModelSpec, device: str = "cpu", cache_dir: str | None = None):
    """Return (model in eval mode, image preprocessing transform, tokenizer)."""
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
    if not pretrained and not model_name.startswith(HF_HUB_PREFIX):
        log.warning(
            "%s.pretrained is empty: %s has RANDOM weights. Categories are meaningless; use this only "
            "to measure speed.",
            spec.key,
            model_name,
        )
    if spec.uses_hub or (pretrained and not spec.pretrained_is_file):
        _cache_only_when_offline()
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name,
            pretrained=pretrained or None,
            device=device,
            cache_dir=cache_dir,
            require_pretrained=bool(pretrained),
        )
    except WeightsUnavailable:
        raise
    except (RuntimeError, OSError, ValueError) as exc:
        raise WeightsUnavailable(_offline_message(spec, exc)) from exc
    tokenizer = open_clip.get_tokenizer(model_name, cache_dir=cache_dir)
    model.eval()
    return model, preprocess, tokenizer


def input_size(model) -> int:
    """The side length the vision tower expects; used to pick a safe JPEG draft scale."""
    size = getattr(model.visual, "image_size", 224)
    return max(size) if isinstance(size, (tuple, list)) else int(size)
