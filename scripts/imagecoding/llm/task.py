"""What a task gives the LLM engine and what it gets back: requests, the task's protocol, outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

# Statuses of rows that hold a model's answer (paid for), usable or not.
ANSWERED = ("ok", "invalid", "unparseable", "refused")
# Statuses of rows whose values are the model's codes (for `invalid`, the values that passed the schema).
CODED = ("ok", "invalid")


class InputUnavailable(Exception):
    """A request that cannot be built (its image does not load, say): the row's status, not the run's end."""

    def __init__(self, status: str, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Request:
    """One question of a task about one image: its cache key and what the task builds the body from."""

    key: str
    image_id: str
    source: Any


class Task(Protocol):
    """What a task gives the engine. `name` tells tasks apart in the cache, the ledger and the logs."""

    name: str
    columns: list[str]  # the checked values of an answer, in table order
    dtypes: dict[str, str]  # pandas dtypes of those columns where object would lose meaning

    def body(self, request: Request) -> dict: ...  # may raise InputUnavailable

    def check(self, answer: object) -> tuple[dict, list[str]]: ...  # values (None where invalid), problems

    def estimated_tokens(self) -> tuple[float, float]: ...  # prompt, completion: when the cache has no averages

    def input_problem(self, request: Request) -> InputUnavailable | None: ...  # known without building the body


@dataclass
class Outcome:
    """What happened to one request: an answer (new or cached) or the error that kept it from one."""

    response: dict | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False
    error: str | None = None
    status: str | None = None  # set only when no answer came: error, skipped_budget, or the input's problem
