"""The stability part of a coding LLM task's rule: ask the repeats and variants, write the per-image majority and
the task's figures, and (stability.vote: majority) hand the majority back as the task's code."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable

import pandas as pd

from ..llm.engine import cost_ledger
from ..outputs import write_csv, write_parquet
from ..tasks.run import LLMRun
from ..validation.variables import CodedVariable, coded_variables
from .asking import ask, stability_requests
from .figures import apply_vote, per_image, stability_metrics

log = logging.getLogger(__name__)


def task_variables(run: LLMRun) -> list[CodedVariable]:
    """What a task codes: frame coding the codebook's categorical and boolean variables, the scheme tasks
    (ensemble, multimodal) one category per scheme."""
    task = run.task
    if task.name == "frames":
        return coded_variables({}, task.codebook, None)
    return [CodedVariable(view["name"], tuple(c for c, _ in view["categories"]), (task.name,))
            for view in task.answers.view]


def sampling_of(run: LLMRun) -> dict:
    """The settings that make repeated answers differ, recorded with the figures."""
    settings = run.engine.settings
    return {"model": settings.model, "temperature": settings.temperature, "seed": settings.seed}


def stability_step(task: str, config: dict, build: Callable[[dict], LLMRun], run: LLMRun, table: pd.DataFrame,
                   design: pd.DataFrame | None, outputs, progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ask the task's repeats and variants and write `outputs.stability` and `outputs.stability_metrics`. Returns
    the task's table (with the majority voted in under stability.vote: majority) and the new answers' ledger."""
    settings = config["stability"]
    # Only images the task's run asked about (routing asks some only): each one's first answer is in its table.
    answered = set(table["image_id"])
    run = replace(run, requests=[r for r in run.requests if r.image_id in answered])
    asked = stability_requests(task, config, build, run, design)
    new = sum(len(r) for r in asked.new().values())
    log.info("stability of %s: %d images, %d coders (%s); %d requests beyond the task's own",
             task, len(asked.requests["repeat_1"]), len(asked.coders), ", ".join(c.name for c in asked.coders), new)
    answers = ask(asked, table, progress)
    skipped = int((answers["status"] == "skipped_budget").sum())
    if skipped:
        log.warning("stability of %s: %d repeats and variants were not asked because llm.max_cost_usd was reached; "
                    "raise it and re-run: every answer so far is cached.", task, skipped)
    variables = task_variables(run)
    voted = per_image(answers, variables)
    figures = stability_metrics(task, answers, variables, sampling_of(run), settings["bootstrap"], settings["seed"])
    write_parquet(voted, outputs.stability)
    write_csv(figures, outputs.stability_metrics)
    if settings["vote"] == "majority":
        table = apply_vote(table, voted, variables)
        log.info("stability.vote: majority: the majority is %s's code on %d images", task, len(voted))
    ledger = cost_ledger(answers[answers["coder"] != "repeat_1"], f"{task}_stability")
    return table, ledger


def stability_of_rule(snakemake, task: str, config: dict, build: Callable[[dict], LLMRun], run: LLMRun,
                      table: pd.DataFrame, progress=None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """stability_step for a task's rule when the plan asks the task again (its outputs name the files); else the
    table unchanged and no more ledger."""
    if not hasattr(snakemake.output, "stability"):
        return table, None
    design_path = getattr(snakemake.input, "stability_design", None)
    design = pd.read_parquet(design_path) if design_path else None
    return stability_step(task, config, build, run, table, design, snakemake.output, progress)
