"""Snakemake entry for rule validation_design: every image's chance of being drawn for the human coders.

It reads only code-free methods (zero-shot and, for the uncertainty design, the ensemble), so codes arriving
never move it, and the steps that weight by it (metrics, estimates, routing) can read it without a cycle.
"""

import logging
from pathlib import Path

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd

from imagecoding.llm.task import CODED
from imagecoding.outputs import write_parquet
from imagecoding.validation.sample import study_design

config, inputs = snakemake.params.settings, snakemake.input
settings = config["validation"]
scheme = settings["scheme"] or sorted(config["clip"]["schemes"])[0]
scores = pd.read_parquet(next(p for p in inputs.scores if Path(p).stem == scheme))
others = []
if inputs.ensemble:
    ensemble = pd.read_parquet(inputs.ensemble[0])
    others.append(ensemble[ensemble["status"].isin(CODED)].drop_duplicates("image_id").set_index("image_id")[scheme])
groups = pd.read_parquet(inputs.groups)  # the unit drawn is the near-duplicate group
design = study_design(settings, scheme, scores, others, groups)
logging.info("%s design over %d images (%d groups) of scheme %s: %d drawn in %d round(s)", settings["design"],
             len(design), design["duplicate_group"].nunique(), scheme, int((design["round"] > 0).sum()), settings["round"])
write_parquet(design, snakemake.output.design)
