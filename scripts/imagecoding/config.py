"""Checks of the configuration that a JSON schema cannot express (files that must exist, names that must agree)."""

from __future__ import annotations

from pathlib import Path

from .clip.model import ModelSpec


class ConfigError(ValueError):
    """A configuration mistake; the message names the key and the fix."""


def schema_problems(config: dict, schema_path: str | Path) -> list[str]:
    """Schema violations as `key.path: what is wrong`, with the known keys when a key is unknown."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        key = ".".join(map(str, error.absolute_path)) or "(top level)"
        if error.validator == "additionalProperties":
            known = ", ".join(sorted(error.schema.get("properties", {})))
            unexpected = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            for name in unexpected:
                where = f"{key}.{name}" if error.absolute_path else name
                problems.append(f"{where}: unknown key (known keys here: {known}); check its spelling.")
        else:
            problems.append(f"{key}: {error.message}")
    return problems


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
    problems += frames_problems(config)
    spec = model_spec(config)
    if spec.pretrained_is_file and not Path(spec.pretrained).is_file():
        problems.append(
            f"clip.pretrained: '{spec.pretrained}' looks like a checkpoint file, but there is no such file."
        )
    return problems


def frames_problems(config: dict) -> list[str]:
    """Frame coding is checked before anything runs: a wrong key or price would fail every request."""
    frames = config.get("frames") or {}
    if not frames.get("enabled"):
        return []
    from .tasks.codebook import CodebookError, load_codebook
    from .llm.client import LLMConfigError, LLMSettings, api_key

    problems = []
    try:
        load_codebook(frames["codebook"])
    except CodebookError as exc:
        problems.append(str(exc))
    if not Path(frames["prompt"]).is_file():
        problems.append(f"frames.prompt: no prompt template at '{frames['prompt']}'.")
    if frames.get("filters") and not (config.get("posts") or {}).get("path"):
        problems.append("frames.filters: filtering on post columns needs a posts table; set posts.path.")
    try:
        api_key(LLMSettings.from_config(config["llm"]))
    except LLMConfigError as exc:
        problems.append(str(exc))
    return problems


def check_schema(config: dict, schema_path: str | Path) -> None:
    """Stop with every schema violation listed, worded for people; Snakemake's validate then fills defaults."""
    problems = schema_problems(config, schema_path)
    if problems:
        raise ConfigError(
            "The configuration does not match config/schema/config.schema.yaml:\n  - " + "\n  - ".join(problems)
        )


def check_config(config: dict) -> None:
    """Stop with every problem of a validated configuration listed (files that must exist, names that must agree)."""
    problems = config_problems(config)
    if problems:
        raise ConfigError("The configuration has problems:\n  - " + "\n  - ".join(problems))
