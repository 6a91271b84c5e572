"""The container route: `snakemake --containerize` describes an image holding every env, pins included.

No image is built here (no Docker or Apptainer daemon in CI, and building needs conda-forge). What is
tested is what Snakemake itself writes: a Dockerfile and an Apptainer definition that name every env
file a rule uses, with its whole pinned closure. Snakemake asks conda for its version and settings
first, so a stand-in `conda` on PATH answers those two questions and nothing else.
"""

import os
import re
import subprocess

import pytest
import yaml

from workflow_helpers import REPO, SNAKEMAKE

CONDA_STANDIN = """#!/bin/sh
case "$1" in
  --version) echo "conda 25.11.0";;
  info) echo '{"conda_prefix": "/opt/conda", "envs_dirs": ["/opt/conda/envs"], "platform": "linux-64"}';;
  config) echo '{"get": {"channel_priority": "strict"}}';;
  *) echo "not a real conda: $*" >&2; exit 1;;
esac
"""


def rule_envs() -> set[str]:
    found = set()
    for path in (REPO / "rules").glob("*.smk"):
        found.update(re.findall(r'conda:\s*\n\s*"\.\./(envs/[^"]+)"', path.read_text()))
    return found


@pytest.mark.parametrize("form", ["dockerfile", "apptainer"])
def test_containerize_names_every_env_with_its_pins(tmp_path, form):
    (tmp_path / "bin").mkdir()
    standin = tmp_path / "bin" / "conda"
    standin.write_text(CONDA_STANDIN)
    standin.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    result = subprocess.run([str(SNAKEMAKE), "--containerize", form, "--cores", "1"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    definition = result.stdout
    envs = rule_envs()
    assert envs == {str(p.relative_to(REPO)) for p in (REPO / "envs").glob("*.yaml")}
    for env_file in sorted(envs):
        assert env_file in definition, f"{env_file} is not in the {form} definition"
        pins = yaml.safe_load((REPO / env_file).read_text())["dependencies"][-1]["pip"]
        assert pins[0].split(" ")[0] in definition  # the commented copy holds the pins, not only the file name
    assert definition.count("conda env create") == len(envs)
    assert "torch==2.14.1" in definition


def test_a_container_setting_parses_and_the_plan_is_unchanged(tmp_path):
    def plan(**extra) -> str:
        config = tmp_path / f"config{len(extra)}.yaml"
        config.write_text(yaml.safe_dump({"images": {"root": str(REPO / "example" / "images")}, **extra}))
        result = subprocess.run([str(SNAKEMAKE), "--dry-run", "--cores", "1", "--directory", str(tmp_path),
                                 "--snakefile", str(REPO / "Snakefile"), "--configfile", str(config)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.split("Job stats:")[1].split("\n\n")[0]

    assert plan(container="docker://example.org/imagecoding:1") == plan()
