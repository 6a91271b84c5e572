"""Software environments: every rule has a conda env, and every env pins its whole closure as requirements.lock does."""

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


def pins_of(env_file: Path) -> list[Requirement]:
    env = yaml.safe_load(env_file.read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_sections, f"{env_file.name} installs nothing from the lock"
    return [Requirement(line.split(" --hash")[0].strip()) for line in pip_sections[0]]


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_its_whole_closure_hashed_and_as_the_lock_does(env_file):
    env = yaml.safe_load(env_file.read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    assert "python=3.11" in [d for d in env["dependencies"] if isinstance(d, str)]
    pins = lock_pins()
    lines = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    for line, requirement in zip(lines, pins_of(env_file)):
        (specifier,) = requirement.specifier
        name = canonicalize_name(requirement.name)
        assert specifier.operator == "==", f"{env_file.name}: {line} is not pinned exactly"
        assert "--hash=sha256:" in line, f"{env_file.name}: {requirement.name} has no hash"
        if name in pins:
            assert specifier.version == pins[name], f"{env_file.name}: {requirement.name}=={specifier.version}, the lock pins {pins[name]}"
        else:  # only packages of other platforms (colorama on Windows) may lie outside this machine's lock
            assert requirement.marker is not None and not requirement.marker.evaluate(), (
                f"{env_file.name}: {requirement.name} is not in requirements.lock: add it there, then `make locks`"
            )


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_file_is_written_from_its_requirements_group(env_file):
    group = REPO / "envs" / "requirements" / f"{env_file.stem}.in"
    assert group.is_file(), f"{env_file.name} has no envs/requirements/{group.name}: `make locks` writes env files from them"
    wanted = {canonicalize_name(Requirement(line).name) for line in group.read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert wanted <= {canonicalize_name(r.name) for r in pins_of(env_file)}
    assert f"Generated from envs/requirements/{group.name}" in env_file.read_text()
    conda = [line.split(":", 1)[1].strip() for line in group.read_text().splitlines() if line.startswith("# conda:")]
    assert [d for d in yaml.safe_load(env_file.read_text())["dependencies"] if isinstance(d, str)] == ["python=3.11", "pip=25.3", *conda]


def test_the_torch_steps_share_one_env():
    blocks = rule_blocks()
    for name in ("clip_weights", "clip_embed", "clip_score", "learned_fit", "signals_objects", "signals_captions", "signals_tags"):
        assert '"../envs/torch.yaml"' in blocks[name], name
    torch_envs = [p.name for p in ENV_FILES if any(r.name == "torch" for r in pins_of(p))]
    assert torch_envs == ["torch.yaml"]


def test_torch_is_pinned_to_the_builds_on_this_machine():
    pins = lock_pins()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_a_step_environment_names_its_env_file_and_flags_packages_that_ran_at_other_versions(tmp_path):
    import json

    from imagecoding.provenance import record_packages, step_environment

    (tmp_path / "envs").mkdir()
    env = {"channels": ["conda-forge"], "dependencies": ["python=3.11", {"pip": [
        "numpy==0.0.1 --hash=sha256:00", "pyyaml==" + __import__("yaml").__version__ + " --hash=sha256:11",
        "colorama==0.4.6 ; sys_platform == 'win32' --hash=sha256:22"]}]}
    (tmp_path / "envs" / "step.yaml").write_text(yaml.safe_dump(env))
    (tmp_path / "logs").mkdir()
    for shard in ("0-of-2", "1-of-2"):
        record_packages(tmp_path / "logs" / f"embed_{shard}.log.packages.json")
    found = step_environment("envs/step.yaml", [str(tmp_path / "logs" / "embed_{shard}.log")], tmp_path)
    assert found["jobs_recorded"] and len(found["env"]["sha256"]) == 64
    import numpy

    assert found["differs"] == {"numpy": {"ran": numpy.__version__, "pinned": "==0.0.1"}}  # pyyaml matches; colorama is not for here
    assert found["ran"]["pyyaml"] == yaml.__version__
    record = json.loads((tmp_path / "logs" / "embed_0-of-2.log.packages.json").read_text())
    assert record["packages"]["numpy"] == numpy.__version__ and record["python"].startswith("3.11")
    assert not step_environment("envs/step.yaml", [str(tmp_path / "nothing_{x}.log")], tmp_path)["jobs_recorded"]


def test_the_ocr_programs_are_recorded_with_their_debian_packages():
    import shutil

    from imagecoding.provenance import installed_packages, system_programs

    assert shutil.which("tesseract"), "make test installs Tesseract (tools/install-system-deps.sh)"
    found = system_programs(installed_packages())
    assert found["tesseract"].startswith("tesseract 5") and "eng" in found["tesseract languages"].split()
    assert "tesseract-ocr=" in found["debian"] and "tesseract-ocr-deu=" in found["debian"]
    assert system_programs({"numpy": "2"}) == {}  # a job whose env has no pytesseract drives no Tesseract


def test_label_studios_test_lock_pins_its_whole_closure_hashed_as_its_input_asks():
    from packaging.version import Version

    from lock_envs import LABEL_STUDIO_IN, LABEL_STUDIO_LOCK, lock_lines

    lines = lock_lines(LABEL_STUDIO_LOCK)
    pins = {}
    for line in lines:
        requirement = Requirement(line.split(" --hash")[0].strip())
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"tests/label-studio.lock: {line} is not pinned exactly: `make locks`"
        assert "--hash=sha256:" in line, f"tests/label-studio.lock: {requirement.name} has no hash: `make locks`"
        pins[canonicalize_name(requirement.name)] = specifier.version
    for line in LABEL_STUDIO_IN.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            wanted = Requirement(line)
            assert wanted.specifier.contains(pins[canonicalize_name(wanted.name)]), (
                f"tests/label-studio.lock does not follow tests/label-studio.in's {line}: `make locks`")
    assert pins["label-studio"] == "1.23.2" and Version(pins["sentry-sdk"]) < Version("3")
    assert "Generated from tests/label-studio.in" in LABEL_STUDIO_LOCK.read_text()
