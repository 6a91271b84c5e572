"""Frame coding: each image and a codebook prompt to a multimodal LLM; answers cached, costed and checked."""

from __future__ import annotations

import json
import logging
import math
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from jinja2 import Environment, StrictUndefined

from .codebook import AnswerNotJSON, Codebook, parse_answer
from ..images import ImageProblem, file_sha256, upload_jpeg
from ..llm.client import LLMClient, LLMConfigError, LLMSettings, image_part, request_body, request_digest, request_key
from ..posts import absolute_path
from ..llm.cache import ResponseCache

log = logging.getLogger(__name__)

DETAIL_SIDES = {"low": 512, "high": 1024, "auto": 1024}
IMAGE_TOKENS_LOW = 85  # OpenAI's fixed cost of a low-detail image
# Statuses of rows that hold a model's answer (paid for), usable or not.
ANSWERED = ("ok", "invalid", "unparseable", "refused")
FRAME_COLUMNS = ["status", "error", "raw", "model", "prompt_tokens", "completion_tokens", "cost_usd", "cached", "request_key"]


@dataclass(frozen=True)
class UploadSettings:
    detail: str = "low"
    max_side: int | None = None
    max_pixels: int = 89_478_485

    @property
    def side(self) -> int:
        return self.max_side or DETAIL_SIDES[self.detail]


@dataclass
class FrameTask:
    image_id: str
    path: str
    key: str


@dataclass
class Outcome:
    """What happened to one request: an answer (new or cached) or the error that kept it from one."""

    response: dict | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False
    error: str | None = None
    status: str | None = None  # set only when no answer came: error, skipped_budget, image_failed


def render_prompt(template_path: str | Path, codebook: Codebook) -> str:
    env = Environment(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
    return env.from_string(Path(template_path).read_text(encoding="utf-8")).render(codebook=codebook).strip()


def select_images(
    manifest: pd.DataFrame,
    merged_posts: pd.DataFrame | None = None,
    filters: dict | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Distinct decodable images to code: all, those of posts matching every filter, or a seeded sample."""
    usable = manifest[manifest["status"] == "ok"].drop_duplicates("image_id")
    if filters:
        if merged_posts is None:
            raise ValueError("frames.filters needs a posts table (posts.path) to filter on.")
        keep = pd.Series(True, index=merged_posts.index)
        for column, allowed in filters.items():
            if column not in merged_posts.columns:
                raise ValueError(f"frames.filters.{column}: the posts table has no column '{column}'.")
            allowed = allowed if isinstance(allowed, list) else [allowed]
            keep &= merged_posts[column].astype(str).isin([str(a) for a in allowed])
        usable = usable[usable["image_id"].isin(set(merged_posts.loc[keep, "image_id"].dropna()))]
    if sample is not None and sample < len(usable):
        usable = usable.sample(n=sample, random_state=seed)
    return usable.sort_values("image_id").reset_index(drop=True)


class FrameRequests:
    """Builds requests for one codebook, prompt and upload setting; the cache key needs no image bytes."""

    def __init__(self, codebook: Codebook, prompt: str, settings: LLMSettings, upload: UploadSettings):
        self.codebook = codebook
        self.prompt = prompt
        self.settings = settings
        self.upload = upload
        self.schema = codebook.json_schema()
        self.examples = [(v, value, path, file_sha256(path)) for v, value, path in codebook.example_images()]
        # Few-shot images are the same in every request: encode them once.
        self.example_parts: list[dict] = []
        for variable, value, path, _ in self.examples:
            self.example_parts.append({"type": "text", "text": f"Example of {variable.group}.{variable.name} = {value}:"})
            self.example_parts.append(image_part(upload_jpeg(path, DETAIL_SIDES["low"]), "low"))
        shared = {
            "prompt": prompt,
            "detail": upload.detail,
            "max_side": upload.side,
            "examples": [(v.column, value, sha) for v, value, _, sha in self.examples],
        }
        self.digest = request_digest(settings, shared, self.schema)

    def key(self, image_id: str) -> str:
        return request_key(self.digest, image_id)

    def tasks(self, images: pd.DataFrame, root: str | Path) -> list[FrameTask]:
        return [
            FrameTask(image_id, str(absolute_path(path, root)), self.key(image_id))
            for image_id, path in zip(images["image_id"], images["path"])
        ]

    def body(self, task: FrameTask) -> dict:
        content: list[dict] = [{"type": "text", "text": self.prompt}, *self.example_parts]
        content.append({"type": "text", "text": "The image to code:"})
        content.append(image_part(upload_jpeg(task.path, self.upload.side, self.upload.max_pixels), self.upload.detail))
        messages = [{"role": "user", "content": content}]
        return request_body(self.settings, messages, self.schema, self.codebook.name)

    def estimated_tokens(self, cache: ResponseCache | None = None) -> tuple[float, float]:
        """Prompt and completion tokens per request: the cache's means for this model, else a rough count."""
        means = cache.token_means(self.settings.model) if cache else None
        if means:
            return means
        text = len(self.prompt) + (len(json.dumps(self.schema)) if self.settings.structured_output == "json_schema" else 0)
        images = 1 + len(self.examples)
        image_tokens = IMAGE_TOKENS_LOW if self.upload.detail == "low" else IMAGE_TOKENS_LOW + 170 * math.ceil(self.upload.side / 512) ** 2
        # an answer of typical length: the first value of each categorical variable, a short token otherwise
        answer = {g.name: {v.name: next(iter(v.values), 0) for v in g.variables} for g in self.codebook.groups}
        return text / 4 + images * image_tokens, min(self.settings.max_tokens, len(json.dumps(answer)) / 3)


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


def _answer(requests: FrameRequests, client: LLMClient, cache: ResponseCache, task: FrameTask) -> Outcome:
    try:
        body = requests.body(task)
    except ImageProblem as problem:
        return Outcome(status="image_failed", error=f"{problem.status}: {problem.detail}")
    response = client.complete(body)
    usage = response.get("usage") or {}
    prompt_tokens = int(usage.get("prompt_tokens") or 0)
    completion_tokens = int(usage.get("completion_tokens") or 0)
    cost = client.settings.price.cost(prompt_tokens, completion_tokens)
    cache.put(task.key, client.settings.model, task.image_id, "sync", response, prompt_tokens, completion_tokens, cost)
    return Outcome(response, prompt_tokens, completion_tokens, cost)


def cached_outcomes(tasks: list[FrameTask], cache: ResponseCache) -> dict[str, Outcome]:
    found = cache.get_many([t.key for t in tasks])
    return {
        key: Outcome(e["response"], e["prompt_tokens"], e["completion_tokens"], e["cost_usd"], cached=True)
        for key, e in found.items()
    }


def run_sync(
    tasks: list[FrameTask],
    requests: FrameRequests,
    client: LLMClient,
    cache: ResponseCache,
    budget: Budget,
    progress=None,
) -> dict[str, Outcome]:
    """Answer every task not in the cache with at most `max_concurrency` requests in flight."""
    outcomes = cached_outcomes(tasks, cache)
    todo = [t for t in tasks if t.key not in outcomes]
    if progress:
        progress.update(len(tasks) - len(todo))
    fatal: LLMConfigError | None = None
    pending: dict[Future, FrameTask] = {}
    queue = iter(todo)
    with ThreadPoolExecutor(max_workers=client.settings.max_concurrency) as pool:
        while True:
            while fatal is None and len(pending) < client.settings.max_concurrency:
                task = next(queue, None)
                if task is None:
                    break
                if task.key in outcomes:
                    continue  # identical request already answered in this run
                if not budget.reserve():
                    outcomes[task.key] = Outcome(
                        status="skipped_budget",
                        error=f"not requested: llm.max_cost_usd ({budget.limit} USD) would be exceeded",
                    )
                    continue
                pending[pool.submit(_answer, requests, client, cache, task)] = task
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    outcome = future.result()
                except LLMConfigError as exc:
                    fatal = fatal or exc
                    outcome = Outcome(status="error", error=str(exc))
                except Exception as exc:  # retries exhausted or a non-retryable answer: this row's error
                    outcome = Outcome(status="error", error=f"{type(exc).__name__}: {exc}")
                budget.settle(outcome.cost_usd)
                outcomes[task.key] = outcome
                if progress:
                    progress.update(1)
                    progress.set_postfix(cost=f"${budget.spent:.4f}", refresh=False)
    if fatal is not None:
        raise fatal
    for task in todo:
        outcomes.setdefault(task.key, Outcome(status="skipped_budget", error="not requested: budget reached"))
    return outcomes


def _message(response: dict) -> tuple[str | None, str | None, str | None]:
    choice = (response.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    return message.get("content"), message.get("refusal"), choice.get("finish_reason")


def frame_row(codebook: Codebook, task: FrameTask, outcome: Outcome, model: str) -> dict:
    """One row of frames.parquet: the checked codes, or the reason there are none; the raw text kept."""
    row = {"image_id": task.image_id, **{c: None for c in codebook.columns}}
    raw = None
    if outcome.response is None:
        status, error = outcome.status or "error", outcome.error
    else:
        raw, refusal, finish = _message(outcome.response)
        if refusal or finish == "content_filter":
            status, error = "refused", refusal or "the endpoint's content filter stopped the answer"
        else:
            try:
                codes, problems = codebook.check_answer(parse_answer(raw))
                row.update(codes)
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
        request_key=task.key,
    )
    return row


def frames_table(codebook: Codebook, tasks: list[FrameTask], outcomes: dict[str, Outcome], model: str) -> pd.DataFrame:
    rows = [frame_row(codebook, task, outcomes[task.key], model) for task in tasks]
    table = pd.DataFrame(rows, columns=["image_id", *codebook.columns, *FRAME_COLUMNS])
    for variable in codebook.variables:
        if variable.type == "integer":
            table[variable.column] = table[variable.column].astype("Int64")
        elif variable.type == "boolean":
            table[variable.column] = table[variable.column].astype("boolean")
    return table.astype({"prompt_tokens": "Int64", "completion_tokens": "Int64", "cost_usd": "float64", "cached": "bool"})


def cost_ledger(table: pd.DataFrame) -> pd.DataFrame:
    """Every answer the frames table uses, with what it cost when it was paid for and whether it came from the cache."""
    paid = table[table["status"].isin(ANSWERED)]
    return paid[["image_id", "request_key", "model", "prompt_tokens", "completion_tokens", "cost_usd", "cached"]].reset_index(drop=True)


@dataclass
class Estimate:
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
            f"frame coding with {settings.model} ({'batch' if self.batch else 'sync'} mode)",
            f"  images selected        {self.images}",
            f"  answers in the cache   {self.cached}",
            f"  requests to make       {self.to_request}",
            f"  prompt tokens          {self.prompt_tokens:,.0f}",
            f"  completion tokens      {self.completion_tokens:,.0f}",
            f"  expected cost          ${self.cost_usd:,.4f}",
            f"  budget (llm.max_cost_usd) {'none' if limit is None else f'${limit:,.2f}'}",
        ]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def estimate(tasks: list[FrameTask], requests: FrameRequests, cache: ResponseCache, batch: bool = False) -> Estimate:
    """What a run would request and cost, counting what the cache already holds."""
    cached = len(cache.get_many([t.key for t in tasks]))
    to_request = len(tasks) - cached
    prompt, completion = requests.estimated_tokens(cache)
    notes = []
    if cache.token_means(requests.settings.model) is None:
        notes.append("token counts are rough (characters / 4); they become exact averages once answers are cached")
    cost = to_request * requests.settings.price.cost(prompt, completion, batch)
    return Estimate(len(tasks), cached, to_request, prompt * to_request, completion * to_request, cost, batch, notes)


def frames_for_merge(table: pd.DataFrame) -> pd.DataFrame:
    """The codes with frames_-prefixed status, error and cost; raw answers and keys stay in frames.parquet."""
    dropped = ["raw", "request_key", "model", "prompt_tokens", "completion_tokens", "cached"]
    renamed = {"status": "frames_status", "error": "frames_error", "cost_usd": "frames_cost_usd"}
    return table.drop(columns=dropped).rename(columns=renamed)
