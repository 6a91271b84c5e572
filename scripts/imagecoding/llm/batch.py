"""OpenAI Batch API mode: requests as JSONL files, submitted, polled and collected into the same cache.

Batches are recorded in the cache the moment they exist, so a restarted run polls them again
instead of submitting (and paying for) the same requests twice.
"""

from __future__ import annotations

import json
import logging
import time

from .budget import Budget
from .task import InputUnavailable, Outcome, Request, Task

log = logging.getLogger(__name__)

FINAL = ("completed", "failed", "expired", "cancelled")
MAX_LINES = 50_000  # the Batch API's limit per file
MAX_BYTES = 190 * 1024 * 1024  # under the 200 MB file limit
BATCH_LEASE_SECONDS = 25 * 3600  # a batch may take its whole 24-hour window


def batch_files(lines: list[str], max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES) -> list[list[str]]:
    """Split JSONL lines into files that respect both the line and the size limit."""
    files, current, size = [], [], 0
    for line in lines:
        length = len(line.encode()) + 1
        if current and (len(current) >= max_lines or size + length > max_bytes):
            files.append(current)
            current, size = [], 0
        current.append(line)
        size += length
    if current:
        files.append(current)
    return files


def _collect(engine, task: Task, batch, requests: dict[str, Request], outcomes: dict) -> None:
    settings = engine.settings
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        for line in engine.client.client.files.content(file_id).text.splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            key = record["custom_id"]
            request = requests.get(key)
            response = record.get("response") or {}
            if response.get("status_code") == 200:
                body = response["body"]
                usage = body.get("usage") or {}
                prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
                cost = settings.price.cost(prompt, completion, batch=True)
                image_id = request.image_id if request else None
                engine.cache.put(key, settings.model, task.name, image_id, "batch", body, prompt, completion, cost)
                outcomes[key] = Outcome(body, prompt, completion, cost)
            else:
                detail = record.get("error") or (response.get("body") or {}).get("error") or response
                outcomes[key] = Outcome(status="error", error=f"batch request failed: {detail}")


def run_batch(engine, task: Task, requests: list[Request], budget: Budget) -> dict[str, Outcome]:
    """Submit what the cache lacks (resuming batches already submitted), poll, and collect into the cache."""
    client = engine.client.client
    max_lines = engine.batch.get("max_lines", MAX_LINES)
    poll_seconds = engine.batch.get("poll_seconds", 60)
    outcomes = engine.cached(requests)
    todo = {r.key: r for r in requests if r.key not in outcomes}
    waiting = [(batch_id, keys) for batch_id, keys in engine.cache.open_batches() if set(keys) & set(todo)]
    covered = {key for _, keys in waiting for key in keys}
    if waiting:
        log.info("resuming %d submitted batch(es) covering %d requests", len(waiting), len(covered))

    lines, chosen, elsewhere = [], [], []
    for key, request in todo.items():
        if key in covered:
            continue
        if not engine.cache.claim(key, BATCH_LEASE_SECONDS):
            elsewhere.append(key)  # another run submitted it: its answer will reach the cache
            continue
        if not budget.reserve():
            engine.cache.release(key)
            outcomes[key] = budget.skipped("submitted")
            continue
        try:
            body = task.body(request)
        except InputUnavailable as problem:
            outcomes[key] = Outcome(status=problem.status, error=problem.detail)
            budget.settle(0.0)
            continue
        lines.append(json.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions", "body": body}))
        chosen.append(key)

    engine.work_dir.mkdir(parents=True, exist_ok=True)
    for number, file_lines in enumerate(batch_files(lines, max_lines)):
        path = engine.work_dir / f"{task.name}-{time.strftime('%Y%m%dT%H%M%S')}-{number}.jsonl"
        path.write_text("\n".join(file_lines) + "\n")
        with open(path, "rb") as handle:
            uploaded = client.files.create(file=(path.name, handle), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window=engine.batch.get("completion_window", "24h"),
        )
        keys = [json.loads(line)["custom_id"] for line in file_lines]
        engine.cache.add_batch(batch.id, uploaded.id, keys)
        waiting.append((batch.id, keys))
        log.info("submitted batch %s with %d requests (%s)", batch.id, len(keys), path.name)

    while waiting:
        for batch_id, keys in list(waiting):
            batch = client.batches.retrieve(batch_id)
            if batch.status not in FINAL:
                continue
            _collect(engine, task, batch, todo, outcomes)
            for key in keys:
                outcomes.setdefault(key, Outcome(status="error", error=f"batch {batch_id} ended '{batch.status}' without an answer"))
            engine.cache.close_batch(batch_id, batch.status)
            waiting.remove((batch_id, keys))
            log.info("batch %s %s", batch_id, batch.status)
        if waiting:
            time.sleep(poll_seconds)
    while elsewhere:
        found = engine.cached([todo[key] for key in elsewhere])
        outcomes.update(found)
        elsewhere = [key for key in elsewhere if key not in found]
        for key in list(elsewhere):
            if engine.cache.claim(key, BATCH_LEASE_SECONDS):  # the other run gave up on it
                engine.cache.release(key)
                outcomes[key] = Outcome(status="error", error="another run claimed this request and gave up; re-run to ask")
                elsewhere.remove(key)
        if elsewhere:
            time.sleep(poll_seconds)
    for key in chosen:
        budget.settle(outcomes[key].cost_usd if key in outcomes else 0.0)
        if outcomes.get(key) is None or outcomes[key].response is None:
            engine.cache.release(key)
    return outcomes
