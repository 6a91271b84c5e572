"""Drift: pip, resolving each env file as conda's pip step would (and Label Studio's test lock as
tests/label_studio.py does), installs exactly what the file pins.

These resolve against the package index (no conda, nothing installed): they catch an env file that
would build something other than what the tests ran, before a user meets it.
"""

from pathlib import Path

import pytest

from env_drift import drift, locked_files, pip_lines

REPO = Path(__file__).resolve().parent.parent
ENV_FILES = locked_files()

pytestmark = pytest.mark.envs


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_pip_installs_exactly_what_the_env_file_pins(env_file):
    assert drift(env_file) == []


def edited_copy(tmp_path, source: Path, edit) -> Path:
    import yaml

    env = yaml.safe_load(source.read_text())
    section = next(d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    section["pip"] = edit(section["pip"])
    target = tmp_path / source.name
    target.write_text(yaml.safe_dump(env, sort_keys=False, width=10_000))
    return target


def test_a_loosened_pin_is_drift(tmp_path):
    source = REPO / "envs" / "signals_vision.yaml"
    assert any(line.startswith("requests==") for line in pip_lines(source))
    loosened = edited_copy(tmp_path, source, lambda lines: [
        "requests>=2 " + line.split(" ", 1)[1] if line.startswith("requests==") else line
        for line in lines
    ])
    problems = drift(loosened)
    assert any("requests is not pinned exactly (>=2)" in p for p in problems), problems


def test_a_dependency_missing_from_the_env_file_is_drift(tmp_path):
    source = REPO / "envs" / "signals_vision.yaml"
    without = edited_copy(tmp_path, source, lambda lines: [line for line in lines if not line.startswith("urllib3==")])
    problems = drift(without)
    assert problems and "urllib3" in "\n".join(problems), problems


def test_the_label_studio_lock_is_checked_and_a_dropped_pin_is_drift(tmp_path):
    source = REPO / "tests" / "label-studio.lock"
    assert source in ENV_FILES
    lines = source.read_text().splitlines()
    assert any(line.startswith("sentry-sdk==2.") for line in lines)
    without = tmp_path / source.name
    without.write_text("\n".join(line for line in lines if not line.startswith("sentry-sdk==")) + "\n")
    problems = drift(without)
    assert problems and "sentry-sdk" in "\n".join(problems), problems  # label-studio needs it, nothing pins it
