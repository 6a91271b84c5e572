"""Snakemake entry for rule estimates: each category's share per method, overall, per account and per period,
naive, human-only and prediction-powered; and the per-image table R's dsl takes."""

import logging
from dataclasses import replace

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd

from imagecoding.estimates.prevalence import (
    as_pictures, charted_methods, dsl_input, headline_sentences, image_groups, prevalence,
)
from imagecoding.manifest import distinct_decodable
from imagecoding.outputs import write_csv, write_json
from imagecoding.plan import methods_of
from imagecoding.posts import post_image_links, read_posts, require_columns
from imagecoding.validation.annotations import study_gold
from imagecoding.validation.metrics import METHOD_NAMES
from imagecoding.validation.predictions import rule_predictions
from imagecoding.validation.sample import sample_validity
from imagecoding.validation.variables import as_code, load_variables

config, inputs, outputs = snakemake.params.settings, snakemake.input, snakemake.output
settings, posts_settings = config["estimates"], config["posts"]
methods = methods_of(config)
variables = load_variables(config, methods)
if methods.routed:
    # Routing asks the LLM about the coded and the unsure images only: its share over them would describe neither
    # the corpus nor a sample of it. The routed codes cover every image and stand for it.
    variables = [replace(v, methods=tuple(m for m in v.methods if m != "multimodal")) for v in variables]
predictions = rule_predictions(variables, inputs)
manifest = pd.read_parquet(inputs.manifest)
design = pd.read_parquet(inputs.design)
gold_table = study_gold(list(inputs.annotations), variables, manifest, config["validation"]).gold
gold = {name: group.set_index("image_id")["value"].map(as_code) for name, group in gold_table.groupby("variable")}

weights, valid, reason, outside = sample_validity(design, gold_table["image_id"])
if outside:
    logging.warning("%s (e.g. %s). The corrected shares are flagged as not valid. To make them valid, code only "
                    "images of results/validation/sample.csv, or leave out the files holding the others.",
                    reason, ", ".join(map(str, outside[:5])))
elif reason:
    logging.warning("%s. The corrected shares are flagged as not valid.", reason)

images = distinct_decodable(manifest)["image_id"]
by_path = manifest.dropna(subset=["image_id"]).drop_duplicates("path").set_index("path")["image_id"]
posts = None
links = pd.DataFrame({"post_row": pd.Series(dtype=float), "image_id": pd.Series(dtype=str)})
if posts_settings["path"]:
    posts = read_posts(posts_settings["path"])
    require_columns(posts, {"posts.account_column": posts_settings["account_column"],
                            "posts.date_column": posts_settings["date_column"]})
    links = post_image_links(posts, posts_settings["image_column"], posts_settings["id_column"], config["images"]["root"],
                             posts_settings["image_separator"])
    links["image_id"] = links["path"].map(by_path)
account, date = (posts_settings["account_column"], posts_settings["date_column"]) if posts is not None else (None, None)
groups, problems = image_groups(images, links, posts, account, date, settings["period"])
if problems["unparseable_dates"]:
    logging.warning("posts.date_column '%s': %d dates are not dates (e.g. %s); their posts are left out of the "
                    "per-period shares. Write them as YYYY-MM-DD.", date, problems["unparseable_dates"],
                    ", ".join(map(repr, problems["unparseable_examples"])))
if settings["unit"] == "picture":  # each near-duplicate group once per account and period
    membership = pd.read_parquet(inputs.groups).set_index("image_id")["duplicate_group"]
    shares_of = as_pictures(predictions, gold, groups, weights, membership)
    logging.info("estimates.unit picture: %d images are %d pictures", len(images), images.map(membership).nunique())
else:
    shares_of = (predictions, gold, groups, weights)
unit_predictions, unit_gold, unit_groups, unit_weights = shares_of
table = prevalence(unit_predictions, unit_gold, variables, unit_groups, unit_weights, settings["level"],
                   settings["min_coded"], valid, reason)
chosen = charted_methods(variables, predictions, settings["report_method"])
sentences = headline_sentences(table, dict(METHOD_NAMES, clip="Zero-shot CLIP"), chosen)
logging.info("%d shares over %d groups; %d gold images (%s)\n%s", len(table), groups[["group_by", "group"]].drop_duplicates().shape[0],
             gold_table["image_id"].nunique(), "a probability sample" if valid else f"not valid: {reason}", "\n".join(sentences))
write_csv(table, outputs.prevalence)
write_csv(dsl_input(predictions, gold, design, links, posts, account, date, settings["period"], images), outputs.dsl)
write_json(outputs.summary, {
    "level": settings["level"], "min_coded": settings["min_coded"], "period": settings["period"],
    "design": config["validation"]["design"], "probability_sample": valid, "not_valid_because": reason,
    "codes_outside_sample": len(outside), "codes_outside_examples": [str(i) for i in outside[:20]],
    "n_coded": int(gold_table["image_id"].nunique()), "account_column": account, "date_column": date,
    "unparseable_dates": problems["unparseable_dates"], "unparseable_examples": problems["unparseable_examples"],
    "report_method": chosen, "sentences": sentences,
})
