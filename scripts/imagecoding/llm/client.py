"""The one LLM client: any OpenAI-compatible endpoint, with bounded retries (retries.py); answers as plain dicts.

Every step that asks an LLM goes through `LLMClient` by way of the engine, so caching, retries and cost
work the same everywhere.
"""

from __future__ import annotations

import logging

from ..retries import retry_waits
from .settings import LLMConfigError, LLMSettings, api_key

log = logging.getLogger(__name__)


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
