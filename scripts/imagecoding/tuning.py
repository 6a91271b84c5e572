"""Settings that change how fast a step runs, never what it writes, reach the step as resources.

Snakemake re-runs a step when its params change, not its resources: batch sizes, devices, loader
workers, flush intervals and request concurrency therefore travel as resources, so tuning them never
re-runs a finished step. Resources are integers or strings; anything else (None, a float) travels as
JSON text and is decoded here.
"""

from __future__ import annotations

import json


def as_resources(**values) -> dict:
    """Resource values for a rule (used in rules/common.smk): integers as they are, the rest as JSON text."""
    return {
        name: value if isinstance(value, int) and not isinstance(value, bool) else json.dumps(value)
        for name, value in values.items()
    }


def from_resources(resources, *names: str) -> dict:
    """The named run-only settings of a job, decoded from its resources."""
    found = {}
    for name in names:
        value = getattr(resources, name)
        found[name] = json.loads(value) if isinstance(value, str) else value
    return found
