"""Snakemake entry for rule multimodal_classify: a multimodal LLM classifies the images into every scheme; with
route.enabled only the coded images and those the cheaper methods are unsure of, at a certified accuracy."""

import logging
import sys
from pathlib import Path

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

from tqdm import tqdm

from imagecoding.outputs import atomic_directory, write_json
from imagecoding.routing.run import RouteSettings, route, scheme_summary, study_inputs
from imagecoding.routing.tables import routed_table
from imagecoding.stability.step import stability_of_rule
from imagecoding.tasks.multimodal import multimodal_run
from imagecoding.tasks.run import rule_inputs

config, manifest, posts = rule_inputs(snakemake)
run = multimodal_run(config, manifest, posts)
settings = RouteSettings.from_config(config["route"])
logging.info("%d images selected; %s mode; concurrency %d; routing %s", len(run.requests), run.engine.mode,
             run.engine.settings.max_concurrency, "on" if settings.enabled else "off")
with tqdm(total=len(run.requests), desc="multimodal", unit="img", file=sys.stderr, mininterval=5) as bar:
    if not settings.enabled:
        table = run.execute(progress=bar)
    else:
        cheap, gold, weights, valid = study_inputs(config, snakemake.input, manifest)
        routing = route(run, cheap, gold, weights, valid, settings, progress=bar)
        table = routing.table
# Under stability.vote: majority the routed codes below read the majority too.
table, more_ledger = stability_of_rule(snakemake, "multimodal", config, lambda c: multimodal_run(c, manifest, posts),
                                       run, table)
run.write(table, snakemake.output.table, snakemake.output.ledger, more_ledger)
if settings.enabled:
    summary = {"cost_per_answer_usd": routing.cost_per_answer, "coded_asked": len(routing.coded),
               "unsure_asked": len(routing.rest), "selected": len(run.requests), "budget_usd": run.engine.max_cost_usd,
               "schemes": {}}
    with atomic_directory(snakemake.output.routing) as folder:
        for scheme, plan in routing.routes.items():
            routed = routed_table(plan, table)
            routed.to_parquet(folder / f"{scheme}.parquet", index=False)
            plan.curve.to_csv(folder / f"{scheme}_curve.csv", index=False)
            summary["schemes"][scheme] = scheme_summary(plan, routed, settings)
            logging.info("%s: cheap method %s, threshold %.2f (%s); %d of %d images decided by the LLM", scheme,
                         plan.cheap.method, plan.threshold, "certified" if plan.certified else f"not certified: {plan.reason}",
                         int((routed["by"] == "multimodal").sum()), len(routed))
        write_json(Path(folder) / "summary.json", summary)
