"""Asking a coding LLM task again: each sampled image's request repeated, and asked with other prompt templates.

Every repeat and every variant is a request of its own through the task's engine: the repeat number is part
of its cache key and a variant's prompt part of its digest, so each is paid once and answered from the cache
on every run after. The first repeat is the task's own request, already asked by the task's run.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..llm.engine import Estimate, answers_table
from ..llm.task import Request
from ..tasks.run import LLMRun

CODING_TASKS = ("frames", "ensemble", "multimodal")


@dataclass(frozen=True)
class Coder:
    """One way of asking: a repeat of the task's own request, or the task with another prompt template."""

    name: str  # repeat_1 .. repeat_R, variant_1 .. variant_V
    kind: str  # repeat or variant
    prompt: str  # the template it renders


def repeated(request: Request, repeat: int) -> Request:
    """The request asked for the `repeat`-th time: the first is the task's own, each further one has its own key."""
    if repeat == 1:
        return request
    key = hashlib.sha256(f"{request.key}\0repeat\0{repeat}".encode()).hexdigest()
    return Request(key, request.image_id, request.source)


def coders(settings: dict, task: str, own_prompt: str) -> list[Coder]:
    """The repeats (the first is the task's own run) and the prompt variants of one task."""
    found = [Coder(f"repeat_{r}", "repeat", own_prompt) for r in range(1, settings["repeats"] + 1)]
    variants = (settings.get("prompt_variants") or {}).get(task) or []
    return found + [Coder(f"variant_{v}", "variant", path) for v, path in enumerate(variants, start=1)]


def sample_images(image_ids: list[str], design: pd.DataFrame | None, sample_size: int | None, seed: int) -> list[str]:
    """The task's images asked again: a seeded sample of `sample_size`, else those the validation sample drew."""
    ids = pd.Series(sorted(set(image_ids)), dtype=object)
    if sample_size is not None:
        picked = ids if sample_size >= len(ids) else ids.sample(n=sample_size, random_state=seed)
    else:
        if design is None:
            raise ValueError("stability.sample_size is null but no validation design was given")
        picked = ids[ids.isin(set(design.loc[design["round"] > 0, "image_id"]))]
    return sorted(picked)


def with_prompt(config: dict, task: str, prompt: str) -> dict:
    """The configuration with the task's prompt template replaced by a variant's."""
    changed = copy.deepcopy(config)
    changed[task]["prompt"] = prompt
    return changed


@dataclass
class StabilityRequests:
    """Per coder the run that builds its bodies and its requests about the sampled images."""

    task: str
    runs: dict[str, LLMRun]
    requests: dict[str, list[Request]]
    coders: list[Coder]

    def new(self) -> dict[str, list[Request]]:
        """The requests the task's own run does not already ask: every coder but the first repeat."""
        return {name: requests for name, requests in self.requests.items() if name != "repeat_1"}

    def estimate(self) -> str:
        """What the repeats and variants would request and cost beyond the task's own run; sends nothing."""
        own = self.runs["repeat_1"]
        parts = [self.runs[name].engine.estimate(self.runs[name].task, requests) for name, requests in self.new().items()]
        total = Estimate(f"stability of {self.task} ({', '.join(self.new()) or 'no coder beyond the task itself'})",
                         len(self.requests["repeat_1"]), sum(p.cached for p in parts), sum(p.to_request for p in parts),
                         sum(p.prompt_tokens for p in parts), sum(p.completion_tokens for p in parts),
                         sum(p.cost_usd for p in parts), own.engine.mode == "batch",
                         list(dict.fromkeys(n for p in parts for n in p.notes)))
        return total.text(own.engine.settings, own.engine.max_cost_usd).replace("images selected ", "images asked again")


def stability_requests(task: str, config: dict, build: Callable[[dict], LLMRun], own: LLMRun,
                       design: pd.DataFrame | None) -> StabilityRequests:
    """The repeats and variants of one task about its sampled images; `build(config)` makes a run as the task's
    rule does, so a variant renders its template exactly as the task's own prompt is rendered."""
    settings = config["stability"]
    images = set(sample_images([r.image_id for r in own.requests], design, settings["sample_size"], settings["seed"]))
    own_requests = [r for r in own.requests if r.image_id in images]
    found = coders(settings, task, config[task]["prompt"])
    runs, requests = {}, {}
    for coder in found:
        if coder.kind == "repeat":
            runs[coder.name] = own
            requests[coder.name] = [repeated(r, int(coder.name.split("_")[1])) for r in own_requests]
        else:
            run = build(with_prompt(config, task, coder.prompt))
            runs[coder.name] = run
            requests[coder.name] = [r for r in run.requests if r.image_id in images]
    return StabilityRequests(task, runs, requests, found)


def ask(asked: StabilityRequests, own_table: pd.DataFrame, progress=None) -> pd.DataFrame:
    """Every coder's checked answer per sampled image, one row each (`coder`, `kind`); the first repeat is read
    from the task's own table. One budget covers them and the task's own run: llm.max_cost_usd caps the step."""
    own = asked.runs["repeat_1"]
    budget = own.engine.budget(own.task)
    # llm.max_cost_usd caps the step: what the task's own run just paid counts against it.
    budget.spent = float(own_table.loc[~own_table["cached"].astype(bool), "cost_usd"].fillna(0).sum())
    kinds = {coder.name: coder.kind for coder in asked.coders}
    first_ids = {r.image_id for r in asked.requests["repeat_1"]}
    tables = [own_table[own_table["image_id"].isin(first_ids)].assign(coder="repeat_1", kind="repeat")]
    for name, requests in asked.new().items():
        run = asked.runs[name]
        outcomes = run.engine.answer(run.task, requests, progress, budget=budget)
        table = answers_table(run.task, requests, outcomes, run.engine.settings.model)
        tables.append(table.assign(coder=name, kind=kinds[name]))
    return pd.concat(tables, ignore_index=True)


def stability_problems(config: dict) -> list[str]:
    """What would make the stability step impossible, named with the key and the fix."""
    settings = config.get("stability") or {}
    if not settings.get("enabled"):
        return []
    problems = []
    ensemble = config.get("ensemble") or {}
    if (ensemble.get("enabled") and ensemble.get("classify") and settings.get("sample_size") is None
            and (config.get("validation") or {}).get("design") == "uncertainty"):
        problems.append(
            "stability.sample_size: the ensemble cannot be asked again on the validation sample, since "
            "validation.design: uncertainty draws that sample from the ensemble's answers; set "
            "stability.sample_size (e.g. 200) or validation.design: stratified.")
    for task, paths in (settings.get("prompt_variants") or {}).items():
        for path in paths or []:
            if not Path(path).is_file():
                problems.append(f"stability.prompt_variants.{task}: no prompt template at '{path}'.")
    return problems
