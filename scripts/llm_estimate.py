"""Snakemake entry for the estimate rules: print what each enabled LLM task would request and cost; sends nothing."""

import logging
from pathlib import Path

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd

from imagecoding.tasks.run import reused_groups, rule_inputs

config, manifest, posts = rule_inputs(snakemake)
design_path = getattr(snakemake.input, "stability_design", None)
design = pd.read_parquet(design_path) if design_path else None
reports = []


def stability_estimate(task: str, build, run) -> None:
    """The repeats and prompt variants of a task asked again (stability.*), priced beside the task."""
    if task in snakemake.params.stability:
        from imagecoding.stability.asking import stability_requests

        reports.append(stability_requests(task, config, build, run, design).estimate())


for task in snakemake.params.tasks:
    if task == "frames":
        from imagecoding.tasks.frames import frames_run

        run = frames_run(config, manifest, posts, need_client=False)
        run.groups = reused_groups(snakemake)  # copies reuse their group's answer: not asked, not priced
        stability_estimate(task, lambda c: frames_run(c, manifest, posts, need_client=False), run)
    elif task == "multimodal":
        from imagecoding.routing.run import RouteSettings, route, routing_estimate, study_inputs
        from imagecoding.tasks.multimodal import multimodal_run

        run = multimodal_run(config, manifest, posts, need_client=False)
        stability_estimate(task, lambda c: multimodal_run(c, manifest, posts, need_client=False), run)
        settings = RouteSettings.from_config(config["route"])
        if settings.enabled:
            cheap, gold, weights, valid = study_inputs(config, snakemake.input, manifest)
            reports.append(routing_estimate(run, route(run, cheap, gold, weights, valid, settings, ask=False)))
            continue
    elif task == "ensemble":
        from imagecoding.tasks.ensemble import ensemble_run

        signals = {Path(path).stem: pd.read_parquet(path) for path in snakemake.input.signals}
        run = ensemble_run(config, manifest, signals, posts, need_client=False)
        stability_estimate(task, lambda c: ensemble_run(c, manifest, signals, posts, need_client=False), run)
    else:
        from imagecoding.manifest import decodable_images
        from imagecoding.tasks.captions import captions_run

        run = captions_run(config, decodable_images(manifest, config["images"]["root"]), need_client=False)
    reports.append(run.estimate())
report = "\n\n".join(reports) or ("No LLM task is enabled (frames.enabled, ensemble.enabled, multimodal.enabled, "
                                   "route.enabled, signals.captions.method: llm).")
logging.info("%s", report)
print(report, flush=True)  # the terminal: this rule exists to be read
