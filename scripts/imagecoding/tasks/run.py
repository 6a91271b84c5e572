"""One LLM task's run from a configuration: its requests on the engine, the checked table, the ledger."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from ..llm.engine import Engine, answers_table, cost_ledger
from ..llm.task import ANSWERED, Request, Task
from ..outputs import write_csv, write_parquet
from ..posts import read_posts
from ..tuning import from_resources

log = logging.getLogger(__name__)


@dataclass
class LLMRun:
    """What an LLM rule executes, estimates and writes; the same for every task."""

    task: Task
    requests: list[Request]
    engine: Engine

    def execute(self, progress=None) -> pd.DataFrame:
        outcomes = self.engine.answer(self.task, self.requests, progress)
        return self.table(self.requests, outcomes)

    def table(self, requests: list[Request], outcomes: dict) -> pd.DataFrame:
        """The checked answers of `requests`, logged with what came from the cache, what was paid and what was skipped."""
        table = answers_table(self.task, requests, outcomes, self.engine.settings.model)
        new = table[~table["cached"] & (table["cost_usd"] > 0)]
        log.info(
            "%s: %d answers from the cache, %d new for $%.4f; status counts:\n%s",
            self.task.name, int(table["cached"].sum()), len(new), new["cost_usd"].sum(),
            table["status"].value_counts().to_string(),
        )
        skipped = int((table["status"] == "skipped_budget").sum())
        if skipped:
            log.warning(
                "%d images were not asked because llm.max_cost_usd (%s USD) was reached; raise it and re-run: "
                "everything answered so far is cached.", skipped, self.engine.max_cost_usd,
            )
        return table

    def write(self, table: pd.DataFrame, table_path, ledger_path, more_ledger: pd.DataFrame | None = None) -> None:
        """The table and its ledger; `more_ledger`: answers the step paid for beside the table (stability's)."""
        write_parquet(table, table_path)
        ledger = cost_ledger(table, self.task.name)
        if more_ledger is not None and len(more_ledger):
            ledger = pd.concat([ledger, more_ledger], ignore_index=True)
        write_csv(ledger, ledger_path)

    def estimate(self, requests: list[Request] | None = None) -> str:
        estimate = self.engine.estimate(self.task, self.requests if requests is None else requests)
        return estimate.text(self.engine.settings, self.engine.max_cost_usd)

    def cost_per_answer(self, table: pd.DataFrame | None = None) -> float:
        """US dollars one answer costs: the mean of those paid for in `table` (the ledger's measure), else the
        engine's estimate from the cache's token means or the task's guess."""
        if table is not None:
            paid = table[table["status"].isin(ANSWERED) & (table["cost_usd"] > 0)]
            if len(paid):
                return float(paid["cost_usd"].mean())
        prompt, completion = self.engine.tokens_per_request(self.task)
        return self.engine.settings.price.cost(prompt, completion, self.engine.mode == "batch")


def llm_settings(params, resources) -> dict:
    """An LLM rule's `llm` block: what shapes answers from its params, how fast to ask from its resources.

    `resources.llm` is what Snakemake granted of the run's global `llm` budget (--resources llm=N,
    profiles/slurm): never keep more requests in flight than were granted, nor than llm.max_concurrency.
    """
    tuning = from_resources(resources, "llm_concurrency", "llm_retry")
    retries, base, cap, timeout, poll = tuning["llm_retry"]
    concurrency = tuning["llm_concurrency"]
    granted = getattr(resources, "llm", 0)
    if granted and granted < concurrency:
        log.info("llm.max_concurrency %d capped at the %d the run's llm budget granted", concurrency, granted)
        concurrency = int(granted)
    llm = dict(params.llm, max_concurrency=concurrency, max_retries=retries,
               backoff_base_s=base, backoff_cap_s=cap, timeout_s=timeout)
    llm["batch"] = dict(llm["batch"], poll_seconds=poll)
    return llm


def rule_inputs(snakemake) -> tuple[dict, pd.DataFrame, pd.DataFrame | None]:
    """The settings (the rule's params, its llm block with the run-only part), the manifest and the posts of an LLM rule."""
    config = dict(snakemake.params.settings, llm=llm_settings(snakemake.params, snakemake.resources))
    posts = read_posts(config["posts"]["path"]) if config["posts"]["path"] else None
    return config, pd.read_parquet(snakemake.input.manifest), posts
