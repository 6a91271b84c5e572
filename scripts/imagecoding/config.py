"""Checks of the configuration that a JSON schema cannot express (files that must exist, names that must agree)."""

from __future__ import annotations

from pathlib import Path

from .clip_model import ModelSpec


class ConfigError(ValueError):
    """A configuration mistake; the message names the key and the fix."""


def model_spec(config: dict) -> ModelSpec:
    clip = config["clip"]
    return ModelSpec(clip["model"], clip.get("pretrained"), clip.get("model_config"))


def config_problems(config: dict) -> list[str]:
    """Every problem found, so the researcher can fix them all in one go."""
    problems = []
    root = Path(config["images"]["root"])
    if not root.is_dir():
        problems.append(f"images.root: '{root}' is not a folder. Point it at the folder holding your images.")
    posts = config.get("posts", {})
    if posts.get("path") and not Path(posts["path"]).is_file():
        problems.append(f"posts.path: no file at '{posts['path']}'. Fix the path, or set posts.path: null.")
    for name, path in config["clip"]["schemes"].items():
        if not Path(path).is_file():
            problems.append(f"clip.schemes.{name}: no scheme file at '{path}'.")
    clip = config["clip"]
    if clip.get("model_config"):
        config_path = Path(clip["model_config"])
        if not config_path.is_file():
            problems.append(f"clip.model_config: no file at '{config_path}'.")
        elif config_path.stem != clip["model"]:
            problems.append(
                f"clip.model is '{clip['model']}' but clip.model_config defines '{config_path.stem}' "
                f"(the file name); set clip.model: {config_path.stem}."
            )
    spec = model_spec(config)
    if spec.pretrained_is_file and not Path(spec.pretrained).is_file():
        problems.append(
            f"clip.pretrained: '{spec.pretrained}' looks like a checkpoint file, but there is no such file."
        )
    return problems


def check_config(config: dict) -> None:
    problems = config_problems(config)
    if problems:
        raise ConfigError("The configuration has problems:\n  - " + "\n  - ".join(problems))
