"""Snakemake entry for rule llm_ledger: one cost ledger of every LLM task's answers (results/llm/cost.csv)."""

import logging

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd

from imagecoding.outputs import write_csv

ledgers = [pd.read_csv(path) for path in snakemake.input]
ledger = pd.concat([l for l in ledgers if len(l)] or ledgers, ignore_index=True)
logging.info("%d answers, $%.4f in all:\n%s", len(ledger), ledger["cost_usd"].sum(), ledger.groupby("task")["cost_usd"].agg(["count", "sum"]).to_string() if len(ledger) else "")
write_csv(ledger, snakemake.output[0])
