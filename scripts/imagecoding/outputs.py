"""Writing results: each file whole or not at all, and a message naming the file and the fix when it fails.

Every writer goes through `atomic`: the content goes to a temporary name beside the target and is
renamed into place only when complete, so a full disk, a read-only results/ or a kill never leaves a
half-written parquet, CSV, JSON or report behind, and an earlier good file stays as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path


class OutputError(OSError):
    """A result could not be written; the message names the file, the reason and the fix."""


def failure_message(path: str | Path, exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return (
        f"Could not write {path}: {reason}. Nothing half-written was left behind and earlier results are "
        f"untouched. Free disk space or make {Path(path).parent or '.'} writable, then re-run: only this step "
        "and the ones after it run again."
    )


@contextmanager
def atomic(path: str | Path):
    """Yield a temporary path beside `path`; on success it replaces `path`, on any failure it is removed."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        _remove(temporary)
        if isinstance(exc, OutputError):
            raise
        raise OutputError(exc.errno, failure_message(path, exc)) from exc
    except BaseException:
        _remove(temporary)
        raise


def _remove(path: Path) -> None:
    try:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    except (FileNotFoundError, OSError):
        pass


def write_parquet(table, path: str | Path) -> None:
    """A pandas DataFrame or a pyarrow Table, whole or not at all."""
    import pyarrow.parquet as pq

    with atomic(path) as temporary:
        if hasattr(table, "to_parquet"):
            table.to_parquet(temporary, index=False)
        else:
            pq.write_table(table, temporary)


def write_csv(frame, path: str | Path) -> None:
    with atomic(path) as temporary:
        frame.to_csv(temporary, index=False)


def write_text(path: str | Path, text: str) -> None:
    with atomic(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json(path: str | Path, value) -> None:
    write_text(path, json.dumps(value, indent=2, default=str))


@contextmanager
def atomic_directory(path: str | Path):
    """Yield a temporary folder beside `path`; when it is complete it takes `path`'s place (the old one goes)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.mkdir(parents=True)
        yield temporary
        if path.exists():
            old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(path, old)
            os.replace(temporary, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, path)
    except OSError as exc:
        _remove(temporary)
        if isinstance(exc, OutputError):
            raise
        raise OutputError(exc.errno, failure_message(path, exc)) from exc
    except BaseException:
        _remove(temporary)
        raise
