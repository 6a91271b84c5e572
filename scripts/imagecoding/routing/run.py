"""Routing as one LLM step: ask the LLM about the coded images first, certify a threshold per scheme on them, then
ask about the images the cheap methods are unsure of, most unsure first, all within one budget.

The same plan, made from the cache alone, is what llm_estimate prints: it sends nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..llm.task import Request
from ..tasks.run import LLMRun
from .cheap import Cheap
from .curve import cheap_only_accuracy, choose_threshold, cost_curve, kept
from .tables import llm_categories

log = logging.getLogger(__name__)

@dataclass
class RouteSettings:
    """The `route` block: which cheap method decides, the accuracy to certify and the threshold used without codes."""

    enabled: bool = False
    cheap: str = "auto"
    target_accuracy: float = 0.9
    delta: float = 0.1
    threshold: float = 0.8

    @classmethod
    def from_config(cls, block: dict) -> "RouteSettings":
        return cls(**{k: block[k] for k in ("enabled", "cheap", "target_accuracy", "delta", "threshold")})


@dataclass
class SchemeRoute:
    """One scheme's plan: its cheap method, the threshold, whether it is certified and why not, and its curve."""

    scheme: str
    cheap: Cheap
    threshold: float
    certified: bool
    reason: str
    curve: pd.DataFrame = field(default_factory=pd.DataFrame)
    cheap_only: float = float("nan")

    def unsure(self) -> pd.Series:
        """image_id -> True where the cheap category does not stand at the chosen threshold."""
        return ~kept(self.cheap, self.threshold)


@dataclass
class Routing:
    table: pd.DataFrame  # the LLM's answers: the coded images, then the unsure rest
    routes: dict[str, SchemeRoute]
    coded: list[Request]
    rest: list[Request]
    cost_per_answer: float


def plan_scheme(scheme: str, cheap: Cheap, answers: pd.DataFrame | None, gold: pd.Series, weights: pd.Series,
                valid: bool, settings: RouteSettings, cost_per_answer: float, coded: set) -> SchemeRoute:
    """The threshold of one scheme: certified on the coded images where there are codes and the LLM's answers on
    them, route.threshold (uncertified) otherwise."""
    gold = gold.dropna()
    if not len(gold.index.intersection(cheap.category.index)):
        return SchemeRoute(scheme, cheap, settings.threshold, False,
                           "no human codes yet: route.threshold applies and the routed accuracy is not certified")
    if answers is None:
        return SchemeRoute(scheme, cheap, settings.threshold, False,
                           "the LLM has not yet answered the coded images: route.threshold stands in until it has")
    curve = cost_curve(scheme, cheap, llm_categories(answers, scheme), gold, weights, coded, cost_per_answer,
                       settings.target_accuracy, settings.delta)
    threshold, certified = choose_threshold(curve)
    curve.loc[curve["threshold"] == threshold, "chosen"] = True
    reason = ""
    if not certified:
        reason = (f"even the LLM on every coded image does not reach route.target_accuracy {settings.target_accuracy:.0%} "
                  f"at 1 - delta = {1 - settings.delta:.0%} (its lower bound is {curve.iloc[-1]['accuracy_bound']:.1%}): "
                  "every image goes to the LLM; code more images or lower the target")
    elif not valid:
        reason = ("the codes are not the workflow's probability sample, so the certificate assumes the coded images "
                  "are a random sample of the corpus")
    cheap_only = cheap_only_accuracy(cheap, gold, weights)[0]
    return SchemeRoute(scheme, cheap, threshold, certified, reason, curve, cheap_only)


def unsure_first(requests: dict[str, Request], routes: dict[str, SchemeRoute], skip: set) -> list[Request]:
    """The images some scheme's cheap category does not stand for: those the cheap methods disagree on first,
    then the least confident, so a budget that runs out leaves the surest images to the cheap method."""
    confidence = None
    for route_plan in routes.values():
        cheap = route_plan.cheap
        scores = cheap.confidence.where(cheap.agree, -1.0).where(route_plan.unsure())
        confidence = scores if confidence is None else pd.concat([confidence, scores], axis=1).min(axis=1)
    if confidence is None:
        return []
    confidence = confidence.dropna()
    order = confidence[confidence.index.isin(list(requests)) & ~confidence.index.isin(list(skip))]
    return [requests[i] for i in order.sort_values(kind="stable").index]


def route(run: LLMRun, cheap: dict[str, Cheap], gold: dict[str, pd.Series], weights: pd.Series, valid: bool,
          settings: RouteSettings, progress=None, ask: bool = True) -> Routing:
    """The routed LLM step; with ask=False the plan from the cache alone (llm_estimate), sending nothing."""
    engine, task = run.engine, run.task
    by_id = {request.image_id: request for request in run.requests}
    coded_ids = set().union(*(set(codes.dropna().index) for codes in gold.values())) if gold else set()
    coded = [by_id[i] for i in sorted(coded_ids & by_id.keys())]
    budget = engine.budget(task)
    if ask:
        outcomes = engine.answer(task, coded, progress, budget)
        answers = run.table(coded, outcomes)
    else:
        outcomes = engine.cached(coded)
        answers = run.table(coded, outcomes) if len(outcomes) == len(coded) else None
    cost = run.cost_per_answer(answers)
    asked = {r.image_id for r in coded}
    routes = {scheme: plan_scheme(scheme, cheap_method, answers, gold.get(scheme, pd.Series(dtype=object)), weights,
                                  valid, settings, cost, asked)
              for scheme, cheap_method in cheap.items()}
    rest = unsure_first(by_id, routes, asked)
    if ask:
        outcomes.update(engine.answer(task, rest, progress, budget))
        table = run.table(coded + rest, outcomes)
    else:
        table = answers if answers is not None else pd.DataFrame()
    return Routing(table, routes, coded, rest, cost)


def _plain(record: dict) -> dict:
    """A curve row for JSON: numpy scalars as Python values, NaN as null."""
    return {k: (None if isinstance(v, float) and v != v else v.item() if hasattr(v, "item") else v) for k, v in record.items()}


def scheme_summary(route_plan: SchemeRoute, routed: pd.DataFrame, settings: RouteSettings) -> dict:
    """What summary.json and the report say of one scheme: the threshold and its certificate, and the chosen point
    against the LLM on every image and the cheap method alone."""
    curve = route_plan.curve
    chosen = curve[curve["chosen"]].iloc[0].to_dict() if len(curve) and curve["chosen"].any() else {}
    everywhere = curve[curve["threshold"] == 1.0].iloc[0].to_dict() if len(curve) else {}
    return {
        "scheme": route_plan.scheme, "cheap": route_plan.cheap.method, "cheap_note": route_plan.cheap.note,
        "threshold": route_plan.threshold, "certified": route_plan.certified, "not_certified_because": route_plan.reason,
        "target_accuracy": settings.target_accuracy, "delta": settings.delta,
        "images": int(len(routed)), "sent": int(routed["sent"].sum()),
        "decided_by": {str(k): int(v) for k, v in routed["by"].value_counts().items()},
        "chosen": _plain(chosen), "llm_everywhere": _plain(everywhere),
        "cheap_only_accuracy": None if route_plan.cheap_only != route_plan.cheap_only else route_plan.cheap_only,
    }


def study_inputs(config: dict, inputs, manifest: pd.DataFrame) -> tuple[dict[str, Cheap], dict[str, pd.Series], pd.Series, bool]:
    """What routing reads from a rule's inputs: per scheme the cheap method (`scores`, `learned`), the gold codes of
    the schemes (`annotations`, read as validation_metrics reads them) and their design weights (`design`)."""
    from ..schemes import load_scheme
    from ..validation.annotations import study_gold
    from ..validation.sample import sample_validity
    from ..validation.variables import as_code, coded_variables
    from .cheap import cheap_answers

    schemes = {name: load_scheme(name, path) for name, path in sorted(config["clip"]["schemes"].items())}
    scores = {Path(p).stem: p for p in inputs.scores}
    folder = Path(inputs.learned[0]) if inputs.learned else None
    cheap = {}
    for name in schemes:
        learned_path = folder / f"{name}.parquet" if folder else None
        learned = pd.read_parquet(learned_path) if learned_path and learned_path.is_file() else None
        cheap[name] = cheap_answers(name, config["route"]["cheap"], pd.read_parquet(scores[name]), learned)
        if cheap[name].note:
            log.warning("%s", cheap[name].note)
    gold_table = study_gold(list(inputs.annotations), coded_variables(schemes), manifest, config["validation"]).gold
    gold = {name: group.set_index("image_id")["value"].map(as_code) for name, group in gold_table.groupby("variable")}
    design = pd.read_parquet(inputs.design) if inputs.design else None
    weights, valid, reason, _ = sample_validity(design, gold_table["image_id"])
    if reason and len(gold_table):
        log.warning("%s: the routing certificate then assumes the coded images are a random sample.", reason)
    return cheap, gold, weights, valid


def routing_estimate(run: LLMRun, routing: Routing) -> str:
    """What llm_estimate prints for a routed task: the LLM on every image, then with routing, and each scheme's threshold."""
    everywhere = run.estimate().replace(f"{run.task.name} with", f"{run.task.name} on every image, with", 1)
    routed = run.estimate(routing.coded + routing.rest).replace(f"{run.task.name} with", f"{run.task.name} with routing, with", 1)
    lines = [everywhere, "", routed,
             f"  of which coded images    {len(routing.coded)} (asked first: the threshold is certified on them)",
             f"  of which unsure images   {len(routing.rest)}"]
    for scheme, plan in routing.routes.items():
        state = "certified" if plan.certified else f"not certified: {plan.reason}"
        lines.append(f"  {scheme}: {plan.cheap.method} decides above confidence {plan.threshold:.2f} ({state})")
    return "\n".join(lines)
