"""Model weights are fetched once, on a machine with internet; model steps only read them from the cache."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

OFFLINE_VARIABLE = "HF_HUB_OFFLINE"  # the one switch: set, no model step touches the network


class WeightsUnavailable(RuntimeError):
    """Model weights could not be obtained; the message says why and what to set instead."""


def offline() -> bool:
    return os.environ.get(OFFLINE_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether a TCP connection to the host of `url` opens quickly. Behind a proxy we cannot tell, so we assume yes."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    endpoint = urlparse(url)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
        return True
    except OSError:
        return False
