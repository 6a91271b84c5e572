"""The stores under store.root: work paid for or computed at length, kept where `make clean` does not reach.

A study from before store.root has its stores inside results/; the main Snakemake process moves them
once (`move_old_stores`).
"""

from __future__ import annotations

import os
import sqlite3
import sys
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
            continue  # store.root chosen inside results/: nothing to move (a warning says make clean deletes it)
        if _holds_something(new):
            say(f"{store.key}: {old} (from before store.root) was not moved, since {new} already holds a store; "
                f"`make clean` deletes {old}, so move what you need out of it by hand first.")
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
                f"{new.parent if old.is_file() else new}`; or keep it where it is with {store.key}: {old} "
                "(then `make clean` deletes it)."
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
        warnings.append(f"{store.key}: '{path}' is inside results/, which `make clean` deletes, and with it the "
                        f"{store.holds}. To keep it, {fix}.")
    return warnings
