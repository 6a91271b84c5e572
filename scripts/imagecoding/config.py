"""Checks of the configuration that a JSON schema cannot express (files that must exist, names that must agree)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .clip.model import ModelSpec
from .plan import annotation_files, asks_multimodal


class ConfigError(ValueError):
    """A configuration mistake; the message names the key and the fix."""


def schema_problems(config: dict, schema_path: str | Path) -> list[str]:
    """Schema violations as `key.path: what is wrong`, with the known keys when a key is unknown."""
    import jsonschema
    import yaml

    # libyaml's loader where PyYAML has it: the schema is read at every start-up, 7x faster than in pure Python
    schema = yaml.load(Path(schema_path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
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


def model_spec(config: dict, key: str = "clip") -> ModelSpec:
    block = config["clip"] if key == "clip" else config["signals"]["captions"]
    return ModelSpec(block["model"], block.get("pretrained"), block.get("model_config"), key)


# Keys whose defaults are files bundled with the workflow (config/...): found from any working directory.
BUNDLED_FILES = [
    ("frames", "codebook"),
    ("frames", "prompt"),
    ("ensemble", "prompt"),
    ("multimodal", "prompt"),
    ("signals", "tags", "vocabulary"),
    ("signals", "captions", "prompt"),
]


def resolve_bundled_files(config: dict, workflow_dir: str | Path) -> None:
    """Relative paths that do not exist where Snakemake runs, but do in the workflow's folder, point there.

    So `--directory my-study` (or a study folder with its own --configfile) still finds the bundled
    codebook, prompts, vocabulary and schemes; the researcher's own files always win.
    """

    def resolved(path: str) -> str:
        if Path(path).is_absolute() or Path(path).exists() or not (Path(workflow_dir) / path).exists():
            return path
        return str(Path(workflow_dir) / path)

    for keys in BUNDLED_FILES:
        block = config
        for key in keys[:-1]:
            block = block[key]
        block[keys[-1]] = resolved(block[keys[-1]])
    schemes = config["clip"]["schemes"]
    for name in schemes:
        schemes[name] = resolved(schemes[name])


@dataclass(frozen=True)
class Store:
    """A store of work paid for or computed at length: its config key, its name under store.root, and
    where it lived before store.root existed (inside results/, which `make clean` deletes)."""

    key: str
    name: str
    old_default: str
    holds: str


STORES = (
    Store("clip.store_dir", "embeddings", "results/embeddings",
          "CLIP embeddings, the phrase cache, precision probes, OpenVINO conversions"),
    Store("signals.store_dir", "signals", "results/cache/signals", "OCR, objects, tags and captions per image"),
    Store("llm.cache", "llm.sqlite", "results/cache/llm.sqlite", "every paid LLM and Cloud Vision answer"),
)


def store_block(config: dict, store: Store) -> tuple[dict, str]:
    """The config block holding a store's key, and the key's last part."""
    *path, last = store.key.split(".")
    block = config
    for part in path:
        block = block[part]
    return block, last


def resolve_stores(config: dict) -> list[Store]:
    """Store keys left at null become paths under store.root, so every rule and script sees a concrete path.

    Returns the stores that took the default: only those may be moved from their old place in results/.
    """
    defaulted = []
    for store in STORES:
        block, key = store_block(config, store)
        if block[key] is None:
            block[key] = os.path.join(config["store"]["root"], store.name)
            defaulted.append(store)
    return defaulted


def check_study(config: dict) -> None:
    """A run needs a study: without images.root there is nothing to do, and the fix is a --configfile."""
    if not (config.get("images") or {}).get("root"):
        raise ConfigError(
            "images.root: your configuration names no image folder. A --configfile replaces "
            "config/config.yaml entirely, so it must set images.root (and posts.path if you have a posts "
            "table); copy config/config.yaml as a start."
        )


def model_file_problems(config: dict, key: str) -> list[str]:
    spec = model_spec(config, key)
    problems = []
    if spec.model_config:
        config_path = Path(spec.model_config)
        if not config_path.is_file():
            problems.append(f"{key}.model_config: no file at '{config_path}'.")
        elif config_path.stem != spec.model:
            problems.append(
                f"{key}.model is '{spec.model}' but {key}.model_config defines '{config_path.stem}' "
                f"(the file name); set {key}.model: {config_path.stem}."
            )
    if spec.pretrained_is_file and not Path(spec.pretrained).is_file():
        problems.append(f"{key}.pretrained: '{spec.pretrained}' looks like a checkpoint file, but there is no such file.")
    return problems


def config_problems(config: dict, uses_conda: bool = False) -> list[str]:
    """Every problem found, so the researcher can fix them all in one go.

    `uses_conda`: the rules' own environments bring their programs (Tesseract), so this machine's are not checked.
    """
    problems = []
    root = Path(config["images"]["root"])
    if not root.is_dir():
        problems.append(f"images.root: '{root}' is not a folder. Point it at the folder holding your images.")
    posts = config.get("posts", {})
    if posts.get("path") and not Path(posts["path"]).is_file():
        problems.append(f"posts.path: no file at '{posts['path']}'. Fix the path, or set posts.path: null.")
    problems += scheme_problems(config)
    problems += model_file_problems(config, "clip")
    problems += frames_problems(config)
    problems += stability_problems(config)
    problems += ensemble_problems(config, uses_conda)
    problems += multimodal_problems(config)
    problems += consensus_problems(config)
    problems += validation_problems(config)
    problems += [
        f"images.extra_roots: '{folder}' is not a folder. List folders that hold images the posts table names."
        for folder in config["images"].get("extra_roots", []) if not Path(folder).is_dir()
    ]
    return problems


def validation_problems(config: dict) -> list[str]:
    validation = config["validation"]
    problems = []
    if validation["scheme"] and validation["scheme"] not in config["clip"]["schemes"]:
        problems.append(
            f"validation.scheme: there is no scheme '{validation['scheme']}'; use one of {', '.join(config['clip']['schemes'])}."
        )
    for path in annotation_files(config):
        if not Path(path).is_file():
            problems.append(f"validation.annotations: no file at '{path}'. Export your coders' work there, or remove it.")
    return problems


def scheme_problems(config: dict) -> list[str]:
    """Every scheme is read at start-up: a mistake in one must not wait for hours of embedding to show."""
    from .schemes import SchemeError, load_scheme

    problems = []
    for name, path in config["clip"]["schemes"].items():
        try:
            load_scheme(name, path)
        except SchemeError as exc:
            problems.append(str(exc))
    return problems


def llm_key_problems(config: dict) -> list[str]:
    from .llm.settings import LLMConfigError, LLMSettings, api_key

    try:
        api_key(LLMSettings.from_config(config["llm"]))
    except LLMConfigError as exc:
        return [str(exc)]
    return []


def ensemble_problems(config: dict, uses_conda: bool = False) -> list[str]:
    """The signals and the ensemble prompt are checked before anything runs, like frame coding."""
    ensemble = config["ensemble"]
    if not ensemble["enabled"]:
        return []
    signals = config["signals"]
    problems = []
    if "ocr" in ensemble["signals"] and not uses_conda:
        from .signals.ocr import tesseract_problems

        problems += tesseract_problems(signals["ocr"]["languages"])
    if "tags" in ensemble["signals"]:
        from .signals.tags import VocabularyError, load_vocabulary

        try:
            load_vocabulary(signals["tags"]["vocabulary"])
        except VocabularyError as exc:
            problems.append(str(exc))
    if "captions" in ensemble["signals"]:
        if signals["captions"]["method"] == "llm":
            if not Path(signals["captions"]["prompt"]).is_file():
                problems.append(f"signals.captions.prompt: no prompt template at '{signals['captions']['prompt']}'.")
            problems += llm_key_problems(config)
        else:
            problems += model_file_problems(config, "signals.captions")
    if "objects" in ensemble["signals"]:
        weights = signals["objects"]["weights"]
        if weights and (weights.endswith((".pth", ".pt")) or "/" in weights) and not Path(weights).is_file():
            problems.append(f"signals.objects.weights: no file at '{weights}'.")
    if "vision" in ensemble["signals"]:
        if not os.environ.get(signals["vision"]["api_key_env"]):
            problems.append(
                f"signals.vision.api_key_env: the environment variable {signals['vision']['api_key_env']} is not set. "
                "Export your Google Cloud API key, or take vision out of ensemble.signals."
            )
    if ensemble["classify"]:
        from .tasks.prompts import BlockPrompt, PromptError

        try:
            BlockPrompt(ensemble["prompt"], ("instructions", "image"), "ensemble.prompt")
        except PromptError as exc:
            problems.append(str(exc))
        if ensemble.get("filters") and not config["posts"].get("path"):
            problems.append("ensemble.filters: filtering on post columns needs a posts table; set posts.path.")
        if ensemble.get("post_text_column") and not config["posts"].get("path"):
            problems.append("ensemble.post_text_column: the post's text needs a posts table; set posts.path.")
        problems += llm_key_problems(config)
    return list(dict.fromkeys(problems))


def consensus_problems(config: dict) -> list[str]:
    """consensus.frames must name a scheme, a codebook variable of it, and map its values onto the scheme's categories."""
    mapping = config["consensus"]["frames"]
    if not mapping:
        return []
    from .schemes import SchemeError, load_scheme
    from .tasks.codebook import CodebookError, load_codebook

    problems = []
    if not config["frames"]["enabled"]:
        problems.append("consensus.frames: maps frame variables, but frames.enabled is false; enable frame coding or remove it.")
        return problems
    try:
        variables = {v.column: v for v in load_codebook(config["frames"]["codebook"]).variables}
    except CodebookError:
        return problems  # frames_problems names it
    for scheme_name, rule in mapping.items():
        where = f"consensus.frames.{scheme_name}"
        if scheme_name not in config["clip"]["schemes"]:
            problems.append(f"{where}: there is no scheme '{scheme_name}' in clip.schemes.")
            continue
        variable = variables.get(rule["variable"])
        if variable is None or variable.type != "categorical":
            problems.append(
                f"{where}.variable: '{rule['variable']}' is not a categorical variable of the codebook "
                f"(Group_Variable, one of {', '.join(c for c, v in variables.items() if v.type == 'categorical')})."
            )
            continue
        try:
            categories = load_scheme(scheme_name, config["clip"]["schemes"][scheme_name]).categories
        except SchemeError:
            continue  # scheme_problems names it
        for value, category in rule["values"].items():
            if value not in variable.values:
                problems.append(f"{where}.values: '{value}' is not a value of {rule['variable']} ({', '.join(variable.values)}).")
            if category not in categories:
                problems.append(f"{where}.values.{value}: '{category}' is not a category of {scheme_name} ({', '.join(categories)}).")
    return problems


def multimodal_problems(config: dict) -> list[str]:
    """The multimodal task's prompt renders with the schemes, and its key is there, before anything runs."""
    if not asks_multimodal(config):
        return []
    settings = config["multimodal"]
    problems = llm_key_problems(config)
    if not Path(settings["prompt"]).is_file():
        problems.append(f"multimodal.prompt: no prompt template at '{settings['prompt']}'; copy config/prompts/multimodal.j2.")
    else:
        from jinja2 import TemplateError

        from .tasks.prompts import render_prompt

        try:
            render_prompt(settings["prompt"], schemes=[{"name": "scheme", "categories": [("Category", ["a phrase"])]}])
        except TemplateError as exc:
            problems.append(f"multimodal.prompt: the template '{settings['prompt']}' does not render with the schemes: "
                            f"{exc}. It is given `schemes` (each with name and categories, a list of (category, phrases)).")
    if settings.get("filters") and not config["posts"].get("path"):
        problems.append("multimodal.filters: filtering on post columns needs a posts table; set posts.path.")
    return problems


def stability_problems(config: dict) -> list[str]:
    """The repeats and variants of the LLM tasks (stability/asking.py says what is checked)."""
    from .stability.asking import stability_problems as problems

    return problems(config)


def frames_problems(config: dict) -> list[str]:
    """Frame coding is checked before anything runs: a wrong key or price would fail every request."""
    frames = config.get("frames") or {}
    if not frames.get("enabled"):
        return []
    from .tasks.codebook import CodebookError, load_codebook

    problems = []
    try:
        load_codebook(frames["codebook"])
    except CodebookError as exc:
        problems.append(str(exc))
    if not Path(frames["prompt"]).is_file():
        problems.append(f"frames.prompt: no prompt template at '{frames['prompt']}'.")
    if frames.get("filters") and not (config.get("posts") or {}).get("path"):
        problems.append("frames.filters: filtering on post columns needs a posts table; set posts.path.")
    return problems + llm_key_problems(config)


def check_schema(config: dict, schema_path: str | Path) -> None:
    """Stop with every schema violation listed, worded for people; Snakemake's validate then fills defaults."""
    problems = schema_problems(config, schema_path)
    if problems:
        raise ConfigError(
            "The configuration does not match config/schema/config.schema.yaml:\n  - " + "\n  - ".join(problems)
        )


def check_config(config: dict, uses_conda: bool = False) -> None:
    """Stop with every problem of a validated configuration listed (files that must exist, names that must agree)."""
    problems = list(dict.fromkeys(config_problems(config, uses_conda)))
    if problems:
        raise ConfigError("The configuration has problems:\n  - " + "\n  - ".join(problems))


def pick(config: dict, *keys: str) -> dict:
    """The named settings (dotted keys: `images.root`, `validation`) as a nested dict shaped like the config.

    What a rule passes as params: exactly the settings its step reads, so changing one re-runs the
    steps that read it and no other.
    """
    picked: dict = {}
    for key in keys:
        source, target = config, picked
        *path, last = key.split(".")
        for part in path:
            source = source[part]
            target = target.setdefault(part, {})
        target[last] = source[last]
    return picked


def without(block: dict, *keys: str) -> dict:
    """A settings block minus its run-only keys (those travel as resources)."""
    return {key: value for key, value in block.items() if key not in keys}
