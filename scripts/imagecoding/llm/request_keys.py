"""Cache keys of LLM requests: a hash of everything that determines an answer, down to the image's content hash."""

from __future__ import annotations

import hashlib
import json

from .settings import LLMSettings


def request_digest(settings: LLMSettings, shared_messages: dict, schema: dict | None) -> str:
    """Hash of what a run's requests share: model, prompt, schema, structured-output mode, parameters.

    Computed once per run; `request_key` adds each image, so keying 10^6 images hashes no prompt again.
    """
    payload = {
        "model": settings.model,
        "messages": shared_messages,
        "schema": schema,
        "structured_output": settings.structured_output,
        "parameters": settings.parameters(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def request_key(shared_digest: str, image_id: str) -> str:
    """The cache key of one request: everything that determines its answer, down to the image's content hash."""
    return hashlib.sha256(f"{shared_digest}\0{image_id}".encode()).hexdigest()
