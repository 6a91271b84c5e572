"""Every entry script's first step: its stderr and its log records go to the rule's log file."""

from __future__ import annotations

import logging
import sys

# Libraries that log every HTTP request at INFO: their warnings stay, their chatter goes.
QUIET = ("httpx", "openai")


def log_to(path: str) -> None:
    """Send stderr (tracebacks, progress bars) and INFO records, time-stamped, to the job's log file.

    Beside it, <log>.packages.json records the Python packages this job actually ran with (read inside
    the job, so in its conda env when there is one): the report compares them with the env file.
    """
    sys.stderr = open(path, "w", buffering=1)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    from .provenance import record_packages

    record_packages(f"{path}.packages.json")
