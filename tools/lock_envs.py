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
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "envs" / "requirements"
CONDA_BASE = ["python=3.11", "pip=25.3"]


def compile_group(path: Path) -> list[str]:
    """The pinned, hashed closure of one requirements group, one requirement per line (continuations joined)."""
    command = [
        str(Path(sys.executable).parent / "uv"), "pip", "compile", "--quiet", "--universal", "--python-version", "3.11",
        "--generate-hashes", "--no-header", "--no-annotate", "-c", str(REPO / "requirements.lock"), str(path),
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


def main() -> None:
    for path in sorted(REQUIREMENTS.glob("*.in")):
        target = REPO / "envs" / f"{path.stem}.yaml"
        target.write_text(env_text(path))
        print(f"{target.relative_to(REPO)}: {len(yaml.safe_load(target.read_text())['dependencies'][-1]['pip'])} pins")


if __name__ == "__main__":
    main()
