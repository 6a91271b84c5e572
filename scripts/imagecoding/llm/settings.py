"""The `llm:` block as settings: the model, its price, the request parameters, and where the API key comes from."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..retries import ServiceConfigError


class LLMConfigError(ServiceConfigError):
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
