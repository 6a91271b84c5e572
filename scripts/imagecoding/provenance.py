"""What produced a result: package versions, workflow revision, input file hashes, time."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .images import file_sha256

PACKAGES = ("snakemake", "torch", "torchvision", "open_clip_torch", "pillow", "pandas", "pyarrow", "numpy", "jinja2")


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# The checkout this library lies in (scripts/imagecoding/..): the workflow the steps ran from.
CHECKOUT = Path(__file__).resolve().parents[2]


def workflow_revision(folder: str | Path = CHECKOUT) -> str | None:
    """The git commit of the workflow checkout, with '-dirty' when it has local edits."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def file_record(path: str | Path) -> dict:
    return {"path": str(path), "sha256": file_sha256(path)}


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def installed_packages() -> dict[str, str]:
    """Every distribution importable here, by canonical name (PEP 503; no import of packaging, which some envs lack)."""
    import re

    return {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
            for d in metadata.distributions() if d.metadata["Name"]}


def system_programs(packages: dict[str, str]) -> dict[str, str]:
    """The programs a job's Python drives that no pip pin covers: Tesseract (its version, its language
    data, and the Debian packages that brought them, as tools/install-system-deps.sh installs them)."""
    import shutil

    found: dict[str, str] = {}
    if "pytesseract" not in packages or not shutil.which("tesseract"):
        return found
    try:
        version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True, timeout=10)
        found["tesseract"] = (version.stdout or version.stderr).splitlines()[0].strip()
        languages = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=10)
        found["tesseract languages"] = " ".join(languages.stdout.splitlines()[1:])
        if shutil.which("dpkg-query"):
            debian = subprocess.run(["dpkg-query", "-W", "-f", "${Package}=${Version} ", "tesseract-ocr*"],
                                    capture_output=True, text=True, timeout=10)
            if debian.stdout.strip():
                found["debian"] = " ".join(p for p in debian.stdout.split() if not p.endswith("="))
    except (OSError, IndexError, subprocess.SubprocessError):
        pass
    return found


def record_packages(path: str | Path) -> None:
    """What a job ran with: Python, the platform, every installed package and the programs it drives
    (see job_log.log_to)."""
    import json
    import sys

    packages = installed_packages()
    record = {"python": platform.python_version(), "platform": platform.platform(), "prefix": sys.prefix,
              "packages": packages, "programs": system_programs(packages)}
    Path(path).write_text(json.dumps(record, indent=1, sort_keys=True))


def pins_here(lines: list[str]) -> dict[str, str]:
    """name -> version specifier of every pip requirement line whose markers hold on this machine
    (hash options stripped): what pip would be asked for here."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in lines:
        requirement = Requirement(line.split(" --hash")[0].strip())
        if requirement.marker is None or requirement.marker.evaluate():
            pins[canonicalize_name(requirement.name)] = ",".join(str(s) for s in requirement.specifier)
    return pins


def env_pip_lines(env_file: str | Path) -> list[str]:
    """The pip section of a conda env file."""
    import yaml

    env = yaml.safe_load(Path(env_file).read_text())
    return next((d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d), [])


def env_pins(env_file: str | Path) -> dict[str, str]:
    """name -> pinned version of every pip pin of a conda env file whose markers hold on this machine."""
    return pins_here(env_pip_lines(env_file))


def step_environment(env: str, logs: list[str], folder: str | Path = CHECKOUT) -> dict:
    """A step's env file (path and hash; it holds the step's whole pinned closure) and what its jobs ran
    with, read from the records beside their logs; `differs` names each package whose version is not
    the one the env file pins (expected when the workflow ran from a venv, without --use-conda)."""
    import glob
    import json
    import re

    env_file = Path(folder) / env
    found = {"env": {"path": env, "sha256": file_sha256(env_file) if env_file.is_file() else None}}
    ran: dict[str, set[str]] = {}
    prefixes, programs = set(), {}
    for pattern in logs:
        for path in sorted(glob.glob(re.sub(r"\{[^}]+\}", "*", pattern) + ".packages.json")):
            record = json.loads(Path(path).read_text())
            prefixes.add(record.get("prefix"))
            programs.update(record.get("programs") or {})
            for name, version in record["packages"].items():
                ran.setdefault(name, set()).add(version)
    if not ran:
        return {**found, "jobs_recorded": False}
    pins = env_pins(env_file) if env_file.is_file() else {}
    differs = {}
    for name, spec in sorted(pins.items()):
        versions = sorted(ran.get(name, set()))
        if versions != [spec.removeprefix("==")]:
            differs[name] = {"ran": ", ".join(versions) or "missing", "pinned": spec}
    return {**found, "jobs_recorded": True, "prefixes": sorted(p for p in prefixes if p),
            "ran": {name: ", ".join(sorted(ran[name])) for name in sorted(set(pins) & set(ran))},
            "differs": differs, "programs": programs}


def environment() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": package_versions()}
