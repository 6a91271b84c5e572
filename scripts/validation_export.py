"""Snakemake entry for rule validation_export: this round's sample of the design as Label Studio tasks and as a
coding sheet, each image with its probabilities and every method's codes."""

import logging
import os

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd

from imagecoding.manifest import distinct_decodable
from imagecoding.outputs import write_csv, write_json, write_text
from imagecoding.posts import absolute_path
from imagecoding.validation.labelstudio import default_document_root, image_url, labeling_config, tasks
from imagecoding.validation.predictions import rule_predictions
from imagecoding.validation.sample import round_sample
from imagecoding.validation.variables import coded_variables_of

config, inputs, outputs = snakemake.params.settings, snakemake.input, snakemake.output
settings = config["validation"]
variables = coded_variables_of(config)
predictions = rule_predictions(variables, inputs)
manifest = pd.read_parquet(inputs.manifest)
paths = distinct_decodable(manifest).set_index("image_id")["path"]
round_number = settings["round"]
design = pd.read_parquet(inputs.design)
sample = round_sample(design, round_number)
sample["path"] = sample["image_id"].map(paths)
root = config["images"]["root"]
studio = settings["label_studio"]
document_root = studio["document_root"] or default_document_root(root)
sample["url"] = [image_url(absolute_path(p, root), root, document_root, studio["url_prefix"]) for p in sample["path"]]
if not studio["url_prefix"]:
    logging.info("Label Studio: start it with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and "
                 "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=%s, and add a Local Files storage with path %s to the project",
                 document_root, os.path.abspath(root))
by_method = {
    method: {image_id: {v: series.get(image_id) for v, series in by_variable.items()} for image_id in sample["image_id"]}
    for method, by_variable in predictions.items()
}
probabilities = sample["inclusion_probability"]
logging.info("round %d of the %s design: %d images (%d drawn in all rounds), inclusion probabilities %.4g to %.4g; "
             "per stratum:\n%s", round_number, settings["design"], len(sample), int((design["round"] > 0).sum()),
             probabilities.min() if len(sample) else 0, probabilities.max() if len(sample) else 0,
             sample["stratum"].value_counts().to_string())
DRAWN = ["round", "round_probability", "inclusion_probability"]
write_csv(sample[["image_id", "path", "stratum", "url", *DRAWN]], outputs.sample)
write_json(outputs.tasks, tasks(sample.to_dict("records"), by_method, extra=DRAWN))
write_text(outputs.labeling_config, labeling_config(variables))
sheet = sample[["image_id", "path", *DRAWN]].assign(coder="", **{v.name: "" for v in variables})
write_csv(sheet, outputs.sheet)
