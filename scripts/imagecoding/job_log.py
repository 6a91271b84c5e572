"""Every entry script's first step: its stderr and its log records go to the rule's log file."""

from __future__ import annotations

import logging
import sys

# Libraries that log every HTTP request at INFO: their warnings stay, their chatter goes.
QUIET = ("httpx", "openai")


def log_to(path: str) -> None:
    """Send stderr (tracebacks, progress bars) and INFO records, time-stamped, to the job's log file."""
    sys.stderr = open(path, "w", buffering=1)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
