"""What runs in a study (methods, LLM tasks, steps), decided from the validated configuration alone."""

from __future__ import annotations


def learns(config: dict) -> bool:
    """The learned classifier runs when it is enabled and there are human codes to learn from."""
    return bool(config["learned"]["enabled"] and config["validation"]["annotations"])


def asks_multimodal(config: dict) -> bool:
    """The multimodal LLM runs when it is enabled, and when routing needs it."""
    return bool(config["multimodal"]["enabled"] or config["route"]["enabled"])


def annotation_files(config: dict) -> list[str]:
    """validation.annotations as a list: one file or several may be named."""
    annotations = config["validation"]["annotations"] or []
    return [annotations] if isinstance(annotations, str) else list(annotations)
