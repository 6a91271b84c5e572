"""Snakemake entry for rule signals_ocr: read the text in every decodable image with Tesseract."""

import logging
import sys

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd

from imagecoding.manifest import decodable_images
from imagecoding.outputs import write_parquet
from imagecoding.signals.ocr import OCRSettings, ocr_tables, tesseract_problems
from imagecoding.signals.run import compute_signal, signal_store
from imagecoding.tuning import from_resources

config, params = snakemake.params.settings, snakemake.params
tuning = from_resources(snakemake.resources, "flush_every", "flush_seconds")
settings = OCRSettings.from_config(params.ocr)
problems = tesseract_problems(settings.languages)
if problems:
    logging.error("%s", "\n".join(problems))
    sys.exit(1)
items = decodable_images(pd.read_parquet(snakemake.input.manifest), config["images"]["root"])
store = signal_store(params.store_dir, "ocr", settings.store_settings())
logging.info("Tesseract %s, languages %s, %d threads", settings.store_settings()["tesseract"], settings.languages, snakemake.threads)
table = compute_signal(
    "ocr", items, store,
    lambda todo: ocr_tables(todo, settings, snakemake.threads, config["images"]["max_pixels"]),
    tuning["flush_every"], tuning["flush_seconds"], settings.store_settings(),
)
write_parquet(table, snakemake.output[0])
