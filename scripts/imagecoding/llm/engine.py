"""The task-neutral LLM engine: cached, budgeted, retried answers to any task's requests, sync or batch.

A task (see tasks/) supplies each request's body, the check of an answer and a rough token count; the
engine knows no codebook, scheme or prompt. Every answer goes through one cache keyed by the whole
request, so no step pays twice for the same question.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..outputs import OutputError
from .budget import Budget
from ..response_cache import ResponseCache
from .client import LLMClient
from .parsing import AnswerNotJSON, parse_answer
from .settings import LLMConfigError, LLMSettings
from .task import ANSWERED, InputUnavailable, Outcome, Request, Task

log = logging.getLogger(__name__)

CLAIM_POLL_SECONDS = 1.0  # how often a run looks for answers another run is fetching
ANSWER_COLUMNS = ["status", "error", "raw", "model", "prompt_tokens", "completion_tokens", "cost_usd", "cached", "request_key"]
LEDGER_COLUMNS = ["image_id", "request_key", "model", "prompt_tokens", "completion_tokens", "cost_usd", "cached", "task"]


@dataclass
class Estimate:
    task: str
    images: int
    cached: int
    to_request: int
    prompt_tokens: float
    completion_tokens: float
    cost_usd: float
    batch: bool = False
    notes: list[str] = field(default_factory=list)

    def text(self, settings: LLMSettings, limit: float | None) -> str:
        lines = [
            f"{self.task} with {settings.model} ({'batch' if self.batch else 'sync'} mode)",
            f"  images selected        {self.images}",
            f"  answers in the cache   {self.cached}",
            f"  requests to make       {self.to_request}",
            f"  prompt tokens          {self.prompt_tokens:,.0f}",
            f"  completion tokens      {self.completion_tokens:,.0f}",
            f"  expected cost          ${self.cost_usd:,.4f}",
            f"  budget (llm.max_cost_usd) {'none' if limit is None else f'${limit:,.2f}'}",
        ]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


class Engine:
    """Answers requests through the cache, the budget and the client; one per LLM rule."""

    def __init__(
        self,
        settings: LLMSettings,
        cache: ResponseCache,
        client: LLMClient | None = None,
        mode: str = "sync",
        max_cost_usd: float | None = None,
        batch: dict | None = None,
        work_dir: str | Path = "batches",
    ):
        self.settings = settings
        self.cache = cache
        self.client = client
        self.mode = mode
        self.max_cost_usd = max_cost_usd
        self.batch = batch or {}
        self.work_dir = Path(work_dir)

    @classmethod
    def from_config(cls, llm: dict, need_client: bool = True, client=None) -> "Engine":
        """The engine of a validated `llm:` block; `need_client=False` for estimates that send nothing."""
        settings = LLMSettings.from_config(llm)
        return cls(
            settings,
            ResponseCache(llm["cache"]),
            LLMClient(settings, client) if need_client else None,
            mode=llm["mode"],
            max_cost_usd=llm.get("max_cost_usd"),
            batch=llm.get("batch"),
            work_dir=Path(llm["cache"]).parent / "batches",
        )

    def tokens_per_request(self, task: Task) -> tuple[float, float]:
        """Prompt and completion tokens per request: the cache's means for this model and task, else the task's guess."""
        return self.cache.token_means(self.settings.model, task.name) or task.estimated_tokens()

    def budget(self, task: Task) -> Budget:
        prompt, _ = self.tokens_per_request(task)
        # Worst case per request: twice the prompt estimate and the full completion allowance.
        worst = self.settings.price.cost(2 * prompt + 100, self.settings.max_tokens, batch=self.mode == "batch")
        return Budget(self.max_cost_usd, worst)

    def cached(self, requests: list[Request]) -> dict[str, Outcome]:
        found = self.cache.get_many([r.key for r in requests])
        return {
            key: Outcome(e["response"], e["prompt_tokens"], e["completion_tokens"], e["cost_usd"], cached=True)
            for key, e in found.items()
        }

    def answer(self, task: Task, requests: list[Request], progress=None, budget: Budget | None = None) -> dict[str, Outcome]:
        """An outcome for every request: from the cache, or asked now within the budget.

        A step that asks in phases (routing: the coded images, then the uncertain rest) passes one `budget` to
        every phase, so llm.max_cost_usd caps the step's whole spending.
        """
        budget = budget or self.budget(task)
        if self.mode == "batch":
            from .batch import run_batch

            outcomes = run_batch(self, task, requests, budget)
            if progress:
                progress.update(len(requests))
            return outcomes
        return self._answer_sync(task, requests, budget, progress)

    def _ask(self, task: Task, request: Request) -> Outcome:
        try:
            body = task.body(request)
        except InputUnavailable as problem:
            return Outcome(status=problem.status, error=problem.detail)
        response = self.client.complete(body)
        usage = response.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        cost = self.settings.price.cost(prompt_tokens, completion_tokens)
        self.cache.put(
            request.key, self.settings.model, task.name, request.image_id, "sync", response,
            prompt_tokens, completion_tokens, cost,
        )
        return Outcome(response, prompt_tokens, completion_tokens, cost)

    lease_seconds = 90.0  # a claim lapses this long after its claimant stops renewing it (a crash elsewhere)

    def _answer_sync(self, task: Task, requests: list[Request], budget: Budget, progress=None) -> dict[str, Outcome]:
        """Ask every request the cache cannot answer, with at most `max_concurrency` in flight.

        A request another process has claimed waits for its answer to reach the cache (or for the
        claim to lapse), so two runs sharing a cache never pay twice for it.
        """
        outcomes = self.cached(requests)
        todo = [r for r in requests if r.key not in outcomes]
        if progress:
            progress.update(len(requests) - len(todo))
        concurrency = self.settings.max_concurrency
        fatal: Exception | None = None
        pending: dict[Future, Request] = {}
        queue = deque(todo)
        waiting: list[Request] = []
        renewed = time.monotonic()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            while True:
                if time.monotonic() - renewed > self.lease_seconds / 3:  # requests in flight keep their claims
                    self.cache.renew([r.key for r in pending.values()], self.lease_seconds)
                    renewed = time.monotonic()
                while fatal is None and queue and len(pending) < concurrency:
                    request = queue.popleft()
                    if request.key in outcomes:
                        continue  # the same request twice in this run: asked once
                    if not self.cache.claim(request.key, self.lease_seconds):
                        waiting.append(request)  # answered or being asked elsewhere
                        continue
                    if not budget.reserve():
                        self.cache.release(request.key)
                        outcomes[request.key] = budget.skipped()
                        continue
                    pending[pool.submit(self._ask, task, request)] = request
                if pending:
                    done, _ = wait(pending, timeout=self.lease_seconds / 3, return_when=FIRST_COMPLETED)
                    for future in done:
                        request = pending.pop(future)
                        try:
                            outcome = future.result()
                        except (LLMConfigError, OutputError) as exc:
                            fatal = fatal or exc
                            outcome = Outcome(status="error", error=str(exc))
                        except Exception as exc:  # retries exhausted or a non-retryable answer: this row's error
                            outcome = Outcome(status="error", error=f"{type(exc).__name__}: {exc}")
                        if outcome.response is None:
                            self.cache.release(request.key)
                        budget.settle(outcome.cost_usd)
                        outcomes[request.key] = outcome
                        if progress:
                            progress.update(1)
                            progress.set_postfix(cost=f"${budget.spent:.4f}", refresh=False)
                    continue
                if fatal is not None or not waiting:
                    break
                time.sleep(CLAIM_POLL_SECONDS)
                found = self.cached(waiting)
                outcomes.update(found)
                if progress:
                    progress.update(len(found))
                queue.extend(r for r in waiting if r.key not in found)
                waiting = []
        if fatal is not None:
            raise fatal
        for request in todo:
            outcomes.setdefault(request.key, Outcome(status="skipped_budget", error="not requested: budget reached"))
        return outcomes

    def estimate(self, task: Task, requests: list[Request]) -> Estimate:
        """What answering would request and cost, counting what the cache already holds; sends nothing."""
        found = self.cache.get_many([r.key for r in requests])
        cached = len(found)
        to_request = sum(1 for r in requests if r.key not in found and task.input_problem(r) is None)
        prompt, completion = self.tokens_per_request(task)
        notes = []
        if self.cache.token_means(self.settings.model, task.name) is None:
            notes.append("token counts are rough (characters / 4); they become exact averages once answers are cached")
        batch = self.mode == "batch"
        cost = to_request * self.settings.price.cost(prompt, completion, batch)
        return Estimate(task.name, len(requests), cached, to_request, prompt * to_request, completion * to_request, cost, batch, notes)


def _message(response: dict) -> tuple[str | None, str | None, str | None]:
    choice = (response.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    return message.get("content"), message.get("refusal"), choice.get("finish_reason")


def answer_row(task: Task, request: Request, outcome: Outcome, model: str) -> dict:
    """One row of a task's table: the checked values, or the reason there are none; the raw text kept."""
    row = {"image_id": request.image_id, **{c: None for c in task.columns}}
    raw = None
    if outcome.response is None:
        status, error = outcome.status or "error", outcome.error
    else:
        raw, refusal, finish = _message(outcome.response)
        if refusal or finish == "content_filter":
            status, error = "refused", refusal or "the endpoint's content filter stopped the answer"
        else:
            try:
                values, problems = task.check(parse_answer(raw))
                row.update(values)
                status, error = ("invalid", "; ".join(problems)) if problems else ("ok", None)
            except AnswerNotJSON as exc:
                status, error = "unparseable", str(exc) + (" (cut off at llm.max_tokens)" if finish == "length" else "")
    row.update(
        status=status,
        error=error,
        raw=raw,
        model=model,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        cost_usd=outcome.cost_usd,
        cached=outcome.cached,
        request_key=request.key,
    )
    return row


def answers_table(task: Task, requests: list[Request], outcomes: dict[str, Outcome], model: str) -> pd.DataFrame:
    rows = [answer_row(task, request, outcomes[request.key], model) for request in requests]
    table = pd.DataFrame(rows, columns=["image_id", *task.columns, *ANSWER_COLUMNS])
    table = table.astype({column: dtype for column, dtype in task.dtypes.items() if column in table.columns})
    return table.astype({"prompt_tokens": "Int64", "completion_tokens": "Int64", "cost_usd": "float64", "cached": "bool"})


def cost_ledger(table: pd.DataFrame | None, task_name: str) -> pd.DataFrame:
    """Every answer a task's table uses, with what it cost when it was paid for and whether it came from the cache.

    None gives the empty ledger of a step that asked no LLM (captions made locally).
    """
    if table is None:
        return pd.DataFrame(columns=LEDGER_COLUMNS)
    paid = table[table["status"].isin(ANSWERED)]
    return paid.assign(task=task_name)[LEDGER_COLUMNS].reset_index(drop=True)
