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


def environment() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": package_versions()}
