"""The stores under store.root: work paid for or computed at length, kept where `make clean` does not reach.

A study from before store.root has its stores inside results/; the main Snakemake process moves them
once (`move_old_stores`). `make clean-stores` (tools/clean_stores.py) lists and deletes them here.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .config import STORES, ConfigError, Store, store_block

RESULTS = "results"
# SQLite's companions of a database file; a move or a delete takes them along.
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
LOCKS = Path(".snakemake") / "locks"


def _inside(path: str | Path, folder: str | Path) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _holds_something(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in SQLITE_SIDECARS]


def _checkpoint(database: Path) -> None:
    """Fold SQLite's write-ahead log into the database file: the last connection to close removes the
    log, so the move carries every answer in one file."""
    db = sqlite3.connect(database, timeout=120)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def run_is_active() -> bool:
    """Another Snakemake run holds this working directory (its locks are taken after the Snakefile is read)."""
    return LOCKS.is_dir() and any(LOCKS.iterdir())


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def move_old_stores(config: dict, defaulted: list[Store], say: Callable[[str], None] = _to_stderr) -> None:
    """Move each defaulted store from its old place in results/ to store.root, once, by renaming.

    Only stores whose key was left at null move: a path the researcher set is theirs. A rename never
    copies, so a store on another file system stops the run with the command to move it by hand
    rather than being copied and deleted behind the researcher's back.
    """
    waiting = [s for s in defaulted if Path(s.old_default).exists()]
    if waiting and run_is_active():
        say(f"{', '.join(s.old_default for s in waiting)}: not moved under store.root now, since another Snakemake "
            f"run holds this folder ({LOCKS}); they move at the next run (after `snakemake --unlock` if none runs).")
        return
    for store in waiting:
        block, key = store_block(config, store)
        old, new = Path(store.old_default), Path(block[key])
        if _inside(new, old) or _inside(old, new):
            continue  # store.root chosen inside results/: nothing to move (stores_in_results warns of it)
        if _holds_something(new):
            say(f"{store.key}: {old} (from before store.root) was not moved, since {new} already holds a store. "
                f"Move what you need out of {old} by hand and delete it (`make clean` will not run while it is there).")
            continue
        try:
            new.parent.mkdir(parents=True, exist_ok=True)
            if new.is_dir():
                new.rmdir()  # empty: the rename takes its place
            if old.is_file():
                _checkpoint(old)
            os.rename(old, new)
            for old_sidecar, new_sidecar in zip(_sidecars(old), _sidecars(new)):
                if old_sidecar.exists():
                    os.rename(old_sidecar, new_sidecar)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"{store.key}: could not move {old} to {new} ({exc}). Stores moved out of results/ into "
                f"store.root ('{config['store']['root']}'), where `make clean` leaves them. While no run is "
                f"active, move it by hand: `mkdir -p {new.parent} && mv {old}{'*' if old.is_file() else ''} "
                f"{new.parent if old.is_file() else new}`; or set {store.key}: {old} to keep using it where it is."
            ) from exc
        say(f"{store.key}: moved {old} to {new} (stores live under store.root now, where `make clean` leaves them)")


def stores_in_results(config: dict) -> list[str]:
    """A warning for every store configured inside results/, which `make clean` deletes."""
    warnings = []
    for store in STORES:
        block, key = store_block(config, store)
        path = block[key]
        if not _inside(path, RESULTS):
            continue
        if os.path.normpath(path) == os.path.normpath(store.old_default):
            fix = f"set {store.key}: null, and the next run moves it under store.root"
        else:
            fix = f"move it out of results/ and set {store.key} to its new place (or null, for under store.root)"
        warnings.append(f"{store.key}: '{path}' is inside results/, which `make clean` is there to empty, and "
                        f"holds the {store.holds}. To keep it safe, {fix}.")
    return warnings


@dataclass(frozen=True)
class StorePath:
    """One thing `make clean-stores` deletes: a store folder or file (with its SQLite companions)."""

    path: Path
    key: str
    holds: str
    sqlite: bool = False

    @property
    def companions(self) -> list[Path]:
        """SQLite's files beside the database, looked for each time: reading the database may create them."""
        return [p for p in _sidecars(self.path) if p.exists()] if self.sqlite else []

    def size(self) -> int:
        total = 0
        for path in (self.path, *self.companions):
            if path.is_file() or path.is_symlink():
                total += path.lstat().st_size
            for folder, _, files in os.walk(path):
                total += sum(os.lstat(os.path.join(folder, name)).st_size for name in files)
        return total

    def delete(self) -> None:
        for path in (self.path, *self.companions):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)  # never follows a symlink out of the store
            elif path.exists() or path.is_symlink():
                path.unlink()


def paid_answers(database: Path) -> tuple[int, float] | None:
    """How many answers an LLM cache holds and what they cost."""
    try:
        db = sqlite3.connect(database, timeout=30)
        try:
            count, cost = db.execute("SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM responses").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return count, cost


def existing_stores(config: dict) -> list[StorePath]:
    """Every store of a resolved configuration that exists, once (a store inside another goes with it)."""
    found = []
    llm_cache = Path(config["llm"]["cache"])
    for store in STORES:
        block, key = store_block(config, store)
        path = Path(block[key])
        found.append(StorePath(path, store.key, store.holds, sqlite=store.key == "llm.cache"))
    batches = llm_cache.parent / "batches"  # the Batch API's upload copies (imagecoding/llm/engine.py)
    if batches.is_dir() and _inside(batches, config["store"]["root"]):
        found.append(StorePath(batches, "llm.cache", "copies of requests uploaded to the Batch API"))
    found = [s for s in found if s.path.exists() or s.path.is_symlink() or s.companions]
    return [s for s in found if not any(o is not s and _inside(s.path, o.path) for o in found)]


def check_deletable(stores: list[StorePath], config: dict, workflow_dir: str | Path) -> None:
    """Refuse to delete a store path that holds the working directory, the workflow or the images:
    a key set to `.` or a parent folder must not take the study with it."""
    precious = {"the working directory": Path.cwd(), "the workflow": Path(workflow_dir),
                "images.root": Path(config["images"]["root"]), "your home folder": Path.home()}
    problems = [
        f"{store.key}: '{store.path}' holds {what} ({place}); point {store.key} at a folder of its own."
        for store in stores for what, place in precious.items() if _inside(place, store.path)
    ]
    if problems:
        raise ConfigError("make clean-stores deletes nothing:\n  - " + "\n  - ".join(problems))
