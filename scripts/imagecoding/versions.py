"""Which library code a step runs, as a key: a changed module re-runs exactly the steps that import it.

Snakemake's code trigger watches a rule's entry script, not the `imagecoding` modules the script
imports. The key of an entry script hashes the script and every `imagecoding` module it reaches
through imports, lazy ones inside functions included, plus the data files (report templates) kept in
the packages it imports. Files are hashed byte for byte: an edited comment re-runs a step for
nothing, but no change of behaviour goes unseen. Imports are found by their syntax, not by running
them (a text scan: parsing every module costs a second per invocation, this a few milliseconds).
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path

PACKAGE = "imagecoding"


FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]+)", re.MULTILINE)
IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w., \t]+)", re.MULTILINE)


@cache
def _parsed(path: Path) -> tuple[str, tuple[str, ...]]:
    """(digest of the file, the modules it imports, lazy imports included, as absolute dotted names)."""
    data = path.read_bytes()
    text = data.decode()
    package = _package_of(path)
    imported = [name.strip().split(" ")[0] for names in IMPORT.findall(text) for name in names.split(",")]
    for dots, module, names in FROM_IMPORT.findall(text):
        base = _absolute(module or None, len(dots), package)
        if base is None:
            continue
        imported.append(base)
        # `from .pkg import module` imports a module, `from .module import name` a name: try both.
        names = names.strip("() \n").replace("\n", ",")
        imported += [f"{base}.{name.split()[0]}" for name in names.split(",") if name.strip() and name.strip() != "*"]
    found = tuple(name for name in imported if name == PACKAGE or name.startswith(PACKAGE + "."))
    return hashlib.sha256(data).hexdigest(), found


def _package_of(path: Path) -> str | None:
    """The dotted package a file of the library belongs to (None for an entry script)."""
    parts = []
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts) or None


def _absolute(module: str | None, level: int, package: str | None) -> str | None:
    if level == 0:
        return module
    if package is None:
        return None
    base = package.split(".")
    if level > 1:
        base = base[: -(level - 1)]
    return ".".join(base + ([module] if module else []))


@cache
def _module_file(name: str, root: Path) -> Path | None:
    """The file of a dotted module under root (the folder holding the package), or None for a name."""
    path = root.joinpath(*name.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    if path.with_suffix(".py").exists():
        return path.with_suffix(".py")
    return None


@cache
def _data_digest(package_dir: Path, root: Path) -> str:
    """Files a package reads at run time (everything in its sub-folders that are not packages), hashed."""
    digest = hashlib.sha256()
    for folder in sorted(package_dir.iterdir()):
        if folder.is_dir() and not (folder / "__init__.py").exists() and folder.name != "__pycache__":
            for path in sorted(folder.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    digest.update(f"{path.relative_to(root)}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def modules_of(script: str | Path, root: str | Path | None = None) -> list[Path]:
    """The entry script and every library file it reaches through imports, sorted; root defaults to its folder."""
    script = Path(script).resolve()
    root = Path(root).resolve() if root else script.parent
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        folder = path.parent  # a module runs the __init__ of every package it lies in
        while (folder / "__init__.py").exists() and folder != root:
            todo.append(folder / "__init__.py")
            folder = folder.parent
        for name in _parsed(path)[1]:
            parts = name.split(".")
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
            for end in range(1, len(parts) + 1):
                found = _module_file(".".join(parts[:end]), root)
                if found is not None and found not in seen:
                    todo.append(found)
    return sorted(seen)


def code_version(script: str | Path, root: str | Path | None = None) -> str:
    """A short key of the code an entry script runs: its modules' syntax trees and its packages' data files."""
    root = Path(root).resolve() if root else Path(script).resolve().parent
    digest = hashlib.sha256()
    files = modules_of(script, root)
    for path in files:
        digest.update(f"{path.relative_to(root)}\0{_parsed(path)[0]}\n".encode())
    packages = sorted({path.parent for path in files if (path.parent / "__init__.py").exists()})
    for package in packages:
        digest.update(f"{package.relative_to(root)}/\0{_data_digest(package, root)}\n".encode())
    return digest.hexdigest()[:16]
