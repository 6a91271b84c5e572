"""Would conda's pip step install exactly what an env file pins? Resolve it as pip would, and compare.

    .venv/bin/python tools/env_drift.py [envs/torch.yaml ... tests/label-studio.lock]   (all of them by default)

The env file's pip section (or a lock's lines: tests/label-studio.lock, for Label Studio's test venv)
goes to a requirements file and `pip install --dry-run --ignore-installed --report` resolves it as into
an empty environment: the same resolver, index and platform as conda's pip step (or the test's
`pip install --require-hashes`), nothing installed. Any package pip would add, drop or take at another
version than the file pins is drift; so is a pip refusal (a pin loosened, a hash missing). No conda is
needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tools"))

from lock_envs import LABEL_STUDIO_LOCK, lock_lines  # noqa: E402

from imagecoding.provenance import env_pip_lines as pip_lines  # noqa: E402
from imagecoding.provenance import pins_here  # noqa: E402


def resolved(lines: list[str]) -> tuple[dict[str, str] | None, str]:
    """(name -> version pip would install, or None; pip's complaint when it refuses)."""
    with tempfile.TemporaryDirectory() as scratch:
        requirements, report = Path(scratch) / "requirements.txt", Path(scratch) / "report.json"
        requirements.write_text("\n".join(lines) + "\n")
        run = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--dry-run",
             "--ignore-installed", "--report", str(report), "-r", str(requirements)],
            capture_output=True, text=True,
        )
        if run.returncode != 0:
            errors = [line for line in run.stderr.splitlines() if "Location 'file:" not in line]
            return None, "\n".join(errors[-12:])
        found = json.loads(report.read_text())["install"]
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in found}, ""


def locked_files() -> list[Path]:
    """Every file that pins an environment: the workflow's env files and Label Studio's test lock."""
    return [*sorted((REPO / "envs").glob("*.yaml")), LABEL_STUDIO_LOCK]


def drift(env_file: Path) -> list[str]:
    """What differs between the env file's (or lock's) pins and what pip resolves from them; empty when nothing does."""
    name = Path(env_file).name
    lines = pip_lines(env_file) if Path(env_file).suffix == ".yaml" else lock_lines(Path(env_file))
    pins = pins_here(lines)
    problems = [f"{name}: {package} is not pinned exactly ({spec or 'no version'})"
                for package, spec in sorted(pins.items()) if not spec.startswith("==") or "," in spec]
    installed, complaint = resolved(lines)
    if installed is None:
        return problems + [f"{name}: pip refuses to install the env's pins:\n{complaint}"]
    for package, version in sorted(installed.items()):
        if package not in pins:
            problems.append(f"{name}: pip would add {package}=={version}, which the env does not pin")
        elif pins[package] != f"=={version}":
            problems.append(f"{name}: pip would install {package}=={version}, the env pins {pins[package]}")
    problems += [f"{name}: pip would not install {package}{pins[package]}, which the env pins"
                 for package in sorted(set(pins) - set(installed))]
    return problems


def main(paths: list[str]) -> int:
    files = [Path(p) for p in paths] or locked_files()
    problems = [problem for path in files for problem in drift(path)]
    for problem in problems:
        print(problem)
    if problems:
        print("\nRun `make locks` to write the env files again from requirements.lock.")
    else:
        print(f"{len(files)} env files and locks: pip installs exactly what each pins.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
