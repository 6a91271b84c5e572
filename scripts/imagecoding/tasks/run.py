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


def one_per_group(requests: list[Request], groups: pd.Series | None) -> tuple[list[Request], dict[str, list[str]]]:
    """(the requests to ask, asked image_id -> its copies' image_ids): one request per near-duplicate group.

    groups: image_id -> duplicate_group (named after its representative). The representative is asked where it is
    among the requests, else the group's first. Without groups every request is asked.
    """
    if groups is None or not len(requests):
        return list(requests), {}
    asked: dict[str, Request] = {}
    copies: dict[str, list[str]] = {}
    group_of = groups.to_dict()
    for request in sorted(requests, key=lambda r: group_of.get(r.image_id, r.image_id) != r.image_id):
        group = group_of.get(request.image_id, request.image_id)
        if group in asked:
            copies[asked[group].image_id].append(request.image_id)
        else:
            asked[group] = request
            copies[request.image_id] = []
    kept = {id(r) for r in asked.values()}
    return [r for r in requests if id(r) in kept], {k: v for k, v in copies.items() if v}


def with_copies(table: pd.DataFrame, copies: dict[str, list[str]]) -> pd.DataFrame:
    """The answers table with one row per copy too: the answer of the image asked, `reused_from` naming it, no cost
    (duplicates.reuse_answers). Asked rows have an empty `reused_from`."""
    table = table.assign(reused_from=pd.Series([None] * len(table), index=table.index, dtype=object))
    if not copies:
        return table
    asked = table[table["image_id"].isin(copies)]
    spread = asked.loc[asked.index.repeat(asked["image_id"].map(lambda i: len(copies[i])))].copy()
    spread["reused_from"] = spread["image_id"]
    spread["image_id"] = [copy for image_id in asked["image_id"] for copy in copies[image_id]]
    spread[["prompt_tokens", "completion_tokens"]] = 0
    spread["cost_usd"] = 0.0
    return pd.concat([table, spread], ignore_index=True)


@dataclass
class LLMRun:
    """What an LLM rule executes, estimates and writes; the same for every task.

    With `groups` (image_id -> duplicate_group, duplicates.reuse_answers), one image per group is asked and its
    answer given to every copy."""

    task: Task
    requests: list[Request]
    engine: Engine
    groups: pd.Series | None = None

    def execute(self, progress=None) -> pd.DataFrame:
        asked, copies = one_per_group(self.requests, self.groups)
        if copies:
            log.info("%s: %d images asked for %d (duplicates.reuse_answers: %d copies reuse their group's answer)",
                     self.task.name, len(asked), len(self.requests), len(self.requests) - len(asked))
        outcomes = self.engine.answer(self.task, asked, progress)
        return with_copies(self.table(asked, outcomes), copies)

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
        # The ledger lists the answers asked for; a copy's reused answer was neither asked nor paid.
        asked = table[table["reused_from"].isna()] if "reused_from" in table else table
        ledger = cost_ledger(asked, self.task.name)
        if more_ledger is not None and len(more_ledger):
            ledger = pd.concat([ledger, more_ledger], ignore_index=True)
        write_csv(ledger, ledger_path)

    def estimate(self, requests: list[Request] | None = None) -> str:
        asked, copies = one_per_group(self.requests if requests is None else requests, self.groups)
        estimate = self.engine.estimate(self.task, asked)
        text = estimate.text(self.engine.settings, self.engine.max_cost_usd)
        saved = sum(map(len, copies.values()))
        return text + (f"\n{saved} copies of pictures asked once reuse their group's answer (duplicates.reuse_answers)"
                       if saved else "")

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


def reused_groups(snakemake) -> pd.Series | None:
    """image_id -> duplicate_group when the rule reads the groups and duplicates.reuse_answers is on, else None."""
    groups = getattr(snakemake.input, "groups", None)
    if not groups or not snakemake.params.settings.get("duplicates", {}).get("reuse_answers"):
        return None
    return pd.read_parquet(groups).set_index("image_id")["duplicate_group"]


def rule_inputs(snakemake) -> tuple[dict, pd.DataFrame, pd.DataFrame | None]:
    """The settings (the rule's params, its llm block with the run-only part), the manifest and the posts of an LLM rule."""
    config = dict(snakemake.params.settings, llm=llm_settings(snakemake.params, snakemake.resources))
    posts = read_posts(config["posts"]["path"]) if config["posts"]["path"] else None
    return config, pd.read_parquet(snakemake.input.manifest), posts
