"""The one LLM client: any OpenAI-compatible endpoint, retries with backoff, request hashing and prices.

Every step that asks an LLM goes through `LLMClient`, the `ResponseCache` and `request_key` (by way of
the engine), so caching, retries and cost work the same everywhere.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

from ..images import DEFAULT_MAX_PIXELS, upload_jpeg

log = logging.getLogger(__name__)

DETAIL_SIDES = {"low": 512, "high": 1024, "auto": 1024}
IMAGE_TOKENS_LOW = 85  # OpenAI's fixed cost of a low-detail image

class LLMConfigError(RuntimeError):
    """A mistake that makes every request fail (key, model, endpoint): the run stops with the fix."""


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    batch_discount: float = 0.5

    def cost(self, prompt_tokens: int, completion_tokens: int, batch: bool = False) -> float:
        usd = (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000
        return usd * self.batch_discount if batch else usd


@dataclass(frozen=True)
class LLMSettings:
    """The `llm:` block of a validated config; its defaults live in the config schema alone."""

    model: str
    price: Price
    base_url: str | None
    api_key_env: str
    max_concurrency: int
    max_retries: int
    backoff_base_s: float
    backoff_cap_s: float
    timeout_s: float
    temperature: float | None
    max_tokens: int
    seed: int | None
    structured_output: str
    token_limit_parameter: str

    @classmethod
    def from_config(cls, llm: dict) -> "LLMSettings":
        prices = llm.get("prices") or {}
        if llm["model"] not in prices:
            raise LLMConfigError(
                f"llm.prices has no entry for the model '{llm['model']}'. Add its prices in US dollars per "
                f"million tokens, e.g.\n  llm:\n    prices:\n      {llm['model']}: {{input: 0.15, output: 0.60}}\n"
                "(use 0 for a local endpoint such as vLLM or Ollama)."
            )
        price = prices[llm["model"]]
        # Snakemake's validate fills defaults of named keys, not of each model's price entry.
        price = Price(price["input"], price["output"], price.get("batch_discount", 0.5))
        fields = [name for name in cls.__dataclass_fields__ if name not in ("model", "price")]
        return cls(model=llm["model"], price=price, **{name: llm[name] for name in fields})

    def parameters(self) -> dict:
        """Request parameters that change answers, so they belong in the cache key."""
        chosen = {"temperature": self.temperature, self.token_limit_parameter: self.max_tokens, "seed": self.seed}
        return {k: v for k, v in chosen.items() if v is not None}


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


def image_part(jpeg: bytes, detail: str) -> dict:
    encoded = base64.b64encode(jpeg).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{encoded}", "detail": detail}}


@dataclass(frozen=True)
class UploadSettings:
    """How images travel to a multimodal endpoint: the detail asked for and the longest side sent."""

    detail: str = "low"
    max_side: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS

    @property
    def side(self) -> int:
        return self.max_side or DETAIL_SIDES[self.detail]

    def part(self, path: str | Path) -> dict:
        """The image as a message part: resized, re-encoded without EXIF (raises ImageProblem)."""
        return image_part(upload_jpeg(path, self.side, self.max_pixels), self.detail)


def response_format(settings: LLMSettings, schema: dict, name: str) -> dict | None:
    if settings.structured_output == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    if settings.structured_output == "json_object":
        return {"type": "json_object"}
    return None  # plain text: the answer is parsed, fenced or not


def request_body(settings: LLMSettings, messages: list[dict], schema: dict, name: str) -> dict:
    body = {"model": settings.model, "messages": messages, **settings.parameters()}
    chosen = response_format(settings, schema, name)
    if chosen:
        body["response_format"] = chosen
    return body


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


def api_key(settings: LLMSettings) -> str:
    """The key from the environment; never logged or written. Local endpoints may need none."""
    key = os.environ.get(settings.api_key_env)
    if key:
        return key
    if settings.base_url:
        return "no-key-needed"  # vLLM and Ollama accept any key
    raise LLMConfigError(
        f"llm.api_key_env: the environment variable {settings.api_key_env} is not set. Export your API key "
        f"(export {settings.api_key_env}=...) or name the variable that holds it in llm.api_key_env."
    )


class LLMClient:
    """Chat completions with bounded retries; returns the completion as a plain dict."""

    def __init__(self, settings: LLMSettings, client=None):
        import openai

        self.settings = settings
        self.openai = openai
        self.client = client or openai.OpenAI(
            api_key=api_key(settings), base_url=settings.base_url, max_retries=0, timeout=settings.timeout_s
        )
        self.retryable = (
            openai.RateLimitError,
            openai.InternalServerError,
            openai.APITimeoutError,
            openai.APIConnectionError,
        )
        self.fatal = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)

    def complete(self, body: dict) -> dict:
        import backoff

        @backoff.on_exception(
            retry_waits,
            self.retryable,
            max_tries=self.settings.max_retries + 1,
            jitter=None,
            base=self.settings.backoff_base_s,
            cap=self.settings.backoff_cap_s,
            on_backoff=lambda d: log.info("retrying after %.2fs (%s)", d["wait"], type(d["exception"]).__name__),
        )
        def call():
            try:
                return self.client.chat.completions.create(**body).model_dump()
            except self.fatal as exc:
                raise LLMConfigError(self._fatal_message(exc)) from exc

        return call()

    def _fatal_message(self, exc) -> str:
        where = self.settings.base_url or "the OpenAI API"
        if isinstance(exc, self.openai.AuthenticationError):
            return (
                f"{where} rejected the API key from {self.settings.api_key_env} ({exc}). "
                "Check the key, or llm.api_key_env and llm.base_url."
            )
        if isinstance(exc, self.openai.NotFoundError):
            return f"{where} does not know llm.model '{self.settings.model}' or the endpoint ({exc}). Check llm.model and llm.base_url."
        return f"{where} refused access ({exc}). Check the key's permissions for llm.model '{self.settings.model}'."
