"""The one LLM answer cache: SQLite, keyed by a hash of the whole request, committed answer by answer.

WAL mode lets parallel Snakemake jobs read while one writes; every answer is its own transaction,
so a killed run loses no answer that was paid for. Failed calls are never stored.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

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
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    input_file_id TEXT,
    keys TEXT NOT NULL,
    status TEXT NOT NULL,
    created TEXT NOT NULL
);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ResponseCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=120, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=120000")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(responses)")}
        if "task" not in columns:  # caches written before answers were filed per task
            self._db.execute("ALTER TABLE responses ADD COLUMN task TEXT")

    def close(self) -> None:
        self._db.close()

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
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO responses (key, model, task, image_id, mode, response, prompt_tokens, "
                "completion_tokens, cost_usd, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, model, task, image_id, mode, json.dumps(response), prompt_tokens, completion_tokens, cost_usd, _now()),
            )

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
