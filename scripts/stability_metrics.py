"""Snakemake entry for rule stability_metrics: every coding LLM task's agreement with itself, in one table."""

import logging

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd

from imagecoding.outputs import write_csv
from imagecoding.stability.figures import METRIC_COLUMNS, sentences

figures = pd.concat([pd.read_csv(path) for path in snakemake.input], ignore_index=True)
write_csv(figures[METRIC_COLUMNS], snakemake.output[0])
for sentence in sentences(figures):
    logging.info("%s", sentence)
