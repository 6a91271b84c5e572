"""Write every conda env file from its requirements group: the step's whole Python closure, pinned and hashed.

    .venv/bin/python tools/lock_envs.py          (or: make locks)

For each envs/requirements/<env>.in (the packages a step imports), `uv pip compile` resolves the
closure for Python 3.11 on every platform (--universal: CUDA wheels only where they exist), with the
versions held to requirements.lock (-c), and with the hashes of every file. The result goes inline
into envs/<env>.yaml's pip section. Inline, not as a `-r` line: Snakemake 9 copies the env file into
.snakemake/conda/ before conda reads it and hashes only its content, so a `-r` file would be neither
found nor noticed when it changed. tests/test_envs.py checks that the env files agree with the lock,
and tests/test_env_drift.py that pip, resolving each env file as conda's pip step does, installs
exactly what it pins.

Lines of an .in file starting with `# conda:` are conda-forge packages the env needs besides Python.

It also writes tests/label-studio.lock from tests/label-studio.in: the closure of the Label Studio that
the validation round trip starts, for Python 3.11 on Linux x86_64, hashed, one requirement a line.
tests/label_studio.py installs it with `pip install --require-hashes`. It is resolved on its own, not
held to requirements.lock: Label Studio runs in a venv of its own and shares no package with the workflow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "envs" / "requirements"
LABEL_STUDIO_IN = REPO / "tests" / "label-studio.in"
LABEL_STUDIO_LOCK = REPO / "tests" / "label-studio.lock"
CONDA_BASE = ["python=3.11", "pip=25.3"]


# A workflow env serves every platform a researcher runs on, with the versions the tests ran.
WORKFLOW_ENV = ("--universal", "-c", str(REPO / "requirements.lock"))
# Label Studio's test venv is only ever built where the tests run.
TEST_MACHINE = ("--python-platform", "x86_64-manylinux_2_28")


def compile_group(path: Path, resolution: tuple[str, ...] = WORKFLOW_ENV) -> list[str]:
    """The pinned, hashed closure of one requirements group, one requirement per line (continuations joined)."""
    command = [
        str(Path(sys.executable).parent / "uv"), "pip", "compile", "--quiet", "--python-version", "3.11",
        "--generate-hashes", "--no-header", "--no-annotate", *resolution, str(path),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO).stdout
    lines, current = [], ""
    for raw in output.splitlines():
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        current = f"{current} {text.rstrip(chr(92)).strip()}".strip()
        if not raw.rstrip().endswith("\\"):
            lines.append(current)
            current = ""
    return lines


def header(path: Path) -> tuple[list[str], list[str]]:
    """(comment lines, conda packages) from the top of an .in file."""
    comments, conda = [], []
    for line in path.read_text().splitlines():
        if line.startswith("# conda:"):
            conda.append(line.split(":", 1)[1].strip())
        elif line.startswith("#"):
            comments.append(line)
        elif line.strip():
            break
    return comments, conda


def env_text(path: Path) -> str:
    comments, conda = header(path)
    env = {"channels": ["conda-forge", "nodefaults"],
           "dependencies": [*CONDA_BASE, *conda, {"pip": compile_group(path)}]}
    note = [f"# Generated from envs/requirements/{path.name} and requirements.lock by `make locks`: do not edit.",
            "# Every package the step's Python needs, pinned, with the hashes of its files."]
    return "\n".join(comments + note) + "\n" + yaml.safe_dump(env, sort_keys=False, width=10_000)


def label_studio_lock_text() -> str:
    comments, _ = header(LABEL_STUDIO_IN)
    note = ["# Generated from tests/label-studio.in by `make locks`: do not edit.",
            "# Label Studio's whole closure for Python 3.11 on Linux x86_64, pinned, with the hashes of its files;",
            "# tests/label_studio.py installs it with `pip install --require-hashes`."]
    return "\n".join(comments + note + compile_group(LABEL_STUDIO_IN, TEST_MACHINE)) + "\n"


def main() -> None:
    for path in sorted(REQUIREMENTS.glob("*.in")):
        target = REPO / "envs" / f"{path.stem}.yaml"
        target.write_text(env_text(path))
        print(f"{target.relative_to(REPO)}: {len(yaml.safe_load(target.read_text())['dependencies'][-1]['pip'])} pins")
    LABEL_STUDIO_LOCK.write_text(label_studio_lock_text())
    print(f"{LABEL_STUDIO_LOCK.relative_to(REPO)}: {len(lock_lines(LABEL_STUDIO_LOCK))} pins")


def lock_lines(path: Path) -> list[str]:
    """The requirement lines of a lock written by label_studio_lock_text (comments skipped)."""
    return [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


if __name__ == "__main__":
    main()
