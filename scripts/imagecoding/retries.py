"""What every paid web service step shares: how long to wait before a retry, and the error that stops the run."""

from __future__ import annotations

import email.utils
import random
import time


class ServiceConfigError(RuntimeError):
    """A setting or credential of a paid web service is wrong: retrying cannot help, so the run stops."""


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's own wait, from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    if headers.get("retry-after-ms"):
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def retry_waits(base: float, cap: float):
    """backoff wait generator: the server's Retry-After when given, else capped exponential with full jitter."""
    attempt = 0
    exc = yield None
    while True:
        server_wait = retry_after_seconds(exc)
        if server_wait is not None:
            delay = min(cap, server_wait) + random.uniform(0, 0.1 * base)
        else:
            delay = random.uniform(0, min(cap, base * 2**attempt))
        attempt += 1
        exc = yield delay
