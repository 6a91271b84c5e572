"""The one answer cache of every paid web service (LLM tasks, Cloud Vision): SQLite, keyed by a hash of the whole request, committed answer by answer.

WAL mode lets parallel Snakemake jobs read while one writes; every answer is its own transaction,
so a killed run loses no answer that was paid for. Failed calls are never stored. Before asking, a
process claims the request's key with a lease: two runs sharing one cache (two studies on one corpus,
the jobs of one cluster run) never pay twice for one request, and a crashed claimant's lease expires.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from .outputs import OutputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    task TEXT,
    image_id TEXT,
    mode TEXT NOT NULL,
    response TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost_usd REAL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    input_file_id TEXT,
    keys TEXT NOT NULL,
    status TEXT NOT NULL,
    created TEXT NOT NULL
);
"""


def _alive(owner: str) -> bool:
    """Whether a claim's owner may still be working: a process of this machine that is gone is not."""
    host, pid, _ = owner.rsplit(":", 2)
    if host != socket.gethostname():
        return True  # another machine: its lease decides
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ResponseCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=120, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=120000")
        self._wal()
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(responses)")}
        if "task" not in columns:  # caches written before answers were filed per task
            self._db.execute("ALTER TABLE responses ADD COLUMN task TEXT")

    def _wal(self, seconds: float = 120.0) -> None:
        """Switch a cache to write-ahead logging. Two runs opening a new cache at once can find it locked before
        SQLite's busy handler is asked (the switch needs the whole file), so the switch is tried again."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _writing(self, what: str):
        """One write; a full disk or a read-only folder stops the run with the cache named (nothing more is paid)."""
        with self._lock:
            try:
                yield
            except sqlite3.OperationalError as exc:
                raise OutputError(
                    28,
                    f"Could not {what} in the LLM cache {self.path} (llm.cache): {exc}. The run stops here so it pays "
                    "for no answer it cannot keep. Free disk space or make the folder writable, then re-run: every "
                    "answer stored so far is kept and not asked again.",
                ) from exc

    def claim(self, key: str, lease_seconds: float) -> bool:
        """Take the right to ask `key` for `lease_seconds`: False when it is answered or another live claim holds it."""
        now = time.time()
        with self._writing("claim a request"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._db.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone():
                    return False
                row = self._db.execute("SELECT owner, expires FROM claims WHERE key = ?", (key,)).fetchone()
                if row and row[0] != self.owner and row[1] > now and _alive(row[0]):
                    return False
                self._db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", (key, self.owner, now + lease_seconds))
                return True
            finally:
                self._db.execute("COMMIT")

    def renew(self, keys: list[str], lease_seconds: float) -> None:
        """Extend this process's claims on keys it is still asking about."""
        if keys:
            with self._writing("renew claims"):
                marks = ",".join("?" * len(keys))
                self._db.execute(
                    f"UPDATE claims SET expires = ? WHERE owner = ? AND key IN ({marks})",
                    (time.time() + lease_seconds, self.owner, *keys),
                )

    def release(self, key: str) -> None:
        """Give up a claim without an answer (the call failed): another run may ask at once."""
        with self._writing("release a claim"):
            self._db.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, self.owner))

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, model, image_id, mode, response, prompt_tokens, completion_tokens, cost_usd, created "
                    f"FROM responses WHERE key IN ({marks})",
                    chunk,
                ).fetchall()
                for key, model, image_id, mode, response, prompt, completion, cost, created in rows:
                    found[key] = {
                        "model": model,
                        "image_id": image_id,
                        "mode": mode,
                        "response": json.loads(response),
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "cost_usd": cost,
                        "created": created,
                    }
        return found

    def put(
        self,
        key: str,
        model: str,
        task: str,
        image_id: str | None,
        mode: str,
        response: dict,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: float,
    ) -> None:
        """Store an answer at once (its own committed transaction); the first answer for a key wins."""
        with self._writing("store an answer"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR IGNORE INTO responses (key, model, task, image_id, mode, response, prompt_tokens, "
                    "completion_tokens, cost_usd, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, model, task, image_id, mode, json.dumps(response), prompt_tokens, completion_tokens, cost_usd, _now()),
                )
                self._db.execute("DELETE FROM claims WHERE key = ?", (key,))
                self._db.execute("COMMIT")
            except BaseException:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def token_means(self, model: str, task: str) -> tuple[float, float] | None:
        """Mean prompt and completion tokens of a task's cached answers from a model: the best cost estimate there is."""
        with self._lock:
            row = self._db.execute(
                "SELECT AVG(prompt_tokens), AVG(completion_tokens), COUNT(*) FROM responses WHERE model = ? AND task = ?",
                (model, task),
            ).fetchone()
        return (row[0], row[1]) if row[2] else None

    # Batch jobs are recorded the moment they are created, so a restarted run polls them again
    # instead of paying for the same requests twice.
    def add_batch(self, batch_id: str, input_file_id: str, keys: list[str]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?)",
                (batch_id, input_file_id, json.dumps(keys), "submitted", _now()),
            )

    def open_batches(self) -> list[tuple[str, list[str]]]:
        with self._lock:
            rows = self._db.execute("SELECT batch_id, keys FROM batches WHERE status = 'submitted'").fetchall()
        return [(batch_id, json.loads(keys)) for batch_id, keys in rows]

    def close_batch(self, batch_id: str, status: str) -> None:
        with self._lock:
            self._db.execute("UPDATE batches SET status = ? WHERE batch_id = ?", (status, batch_id))
