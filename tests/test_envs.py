"""Software environments: every rule has a conda env, and every env pins what requirements.lock pins."""

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"requirements.lock must pin exactly: {line}"
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def rule_blocks() -> dict[str, str]:
    blocks = {}
    for path in RULE_FILES:
        text = path.read_text()
        for match in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", text, re.MULTILINE):
            blocks[match.group(1)] = match.group(2)
    return blocks


def test_every_rule_that_runs_code_has_its_own_conda_env():
    blocks = rule_blocks()
    assert {"manifest", "clip_weights", "clip_embed", "clip_score", "merge", "report"} <= set(blocks)
    for name, body in blocks.items():
        if not re.search(r"^\s+(script|shell|run):", body, re.MULTILINE):
            continue  # a target such as all or models runs no code
        match = re.search(r'conda:\s*\n\s*"([^"]+)"', body)
        assert match, f"rule {name} has no conda: env"
        assert (REPO / "rules" / match.group(1)).resolve().is_file(), f"rule {name}: {match.group(1)} does not exist"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_match_the_lock(env_file):
    env = yaml.safe_load(env_file.read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    pins = lock_pins()
    conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda_deps
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_sections, f"{env_file.name} installs nothing from the lock"
    for line in pip_sections[0]:
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        name = canonicalize_name(requirement.name)
        assert specifier.operator == "==", f"{env_file.name}: {line} is not pinned exactly"
        assert name in pins, f"{env_file.name}: {requirement.name} is not in requirements.lock"
        assert specifier.version == pins[name], f"{env_file.name}: {line}, but the lock pins {pins[name]}"


def test_torch_is_pinned_to_the_builds_on_this_machine():
    pins = lock_pins()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
