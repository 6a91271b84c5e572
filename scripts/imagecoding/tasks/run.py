"""One LLM task's run from a configuration: its requests on the engine, the checked table, the ledger."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from ..llm.engine import Engine, answers_table, cost_ledger
from ..llm.task import Request, Task
from ..outputs import write_csv, write_parquet
from ..posts import read_posts

log = logging.getLogger(__name__)


@dataclass
class LLMRun:
    """What an LLM rule executes, estimates and writes; the same for every task."""

    task: Task
    requests: list[Request]
    engine: Engine

    def execute(self, progress=None) -> pd.DataFrame:
        outcomes = self.engine.answer(self.task, self.requests, progress)
        table = answers_table(self.task, self.requests, outcomes, self.engine.settings.model)
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

    def write(self, table: pd.DataFrame, table_path, ledger_path) -> None:
        write_parquet(table, table_path)
        write_csv(cost_ledger(table, self.task.name), ledger_path)

    def estimate(self) -> str:
        estimate = self.engine.estimate(self.task, self.requests)
        return estimate.text(self.engine.settings, self.engine.max_cost_usd)


def rule_inputs(snakemake) -> tuple[dict, pd.DataFrame, pd.DataFrame | None]:
    """The configuration (with the rule's own llm and task params), the manifest and the posts of an LLM rule."""
    config = dict(snakemake.config, **{key: value for key, value in snakemake.params.items()})
    budget = getattr(snakemake.resources, "llm", 0)
    if config.get("llm") and budget and budget < config["llm"]["max_concurrency"]:
        # Snakemake gave this job less of the run's global `llm` budget than it asked for (--resources
        # llm=N, profiles/slurm): never keep more requests in flight than were granted.
        log.info("llm.max_concurrency %d capped at the %d the run's llm budget granted", config["llm"]["max_concurrency"], budget)
        config["llm"] = dict(config["llm"], max_concurrency=int(budget))
    posts = read_posts(config["posts"]["path"]) if config["posts"]["path"] else None
    return config, pd.read_parquet(snakemake.input.manifest), posts
