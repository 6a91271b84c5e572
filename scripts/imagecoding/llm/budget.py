"""The run's spending cap: new requests stop before what is spent and in flight could pass llm.max_cost_usd."""

from __future__ import annotations

import threading

from .task import Outcome


class Budget:
    """Stops new requests before the run's spending could pass `limit`, counting requests in flight."""

    def __init__(self, limit: float | None, worst_case: float):
        self.limit = limit
        self.worst_case = worst_case
        self.spent = 0.0
        self.reserved = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> bool:
        with self._lock:
            if self.limit is not None and self.spent + self.reserved + self.worst_case > self.limit:
                return False
            self.reserved += self.worst_case
            return True

    def settle(self, cost: float) -> None:
        with self._lock:
            self.reserved -= self.worst_case
            self.spent += cost

    def skipped(self, verb: str = "requested") -> Outcome:
        return Outcome(status="skipped_budget", error=f"not {verb}: llm.max_cost_usd ({self.limit} USD) would be exceeded")
