"""Snakemake entry for rule learned_fit: a classifier per coded variable, learned from the human codes on the
stored image embeddings; out-of-fold predictions for the coded images, the final model's for the rest."""

import logging
import os

from imagecoding.job_log import log_to

log_to(snakemake.log[0])
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
from functools import partial

import pandas as pd
import sklearn

from imagecoding.clip.embeddings import EmbeddingStore
from imagecoding.clip.phrases import phrase_embeddings, read_index, scores_from_store
from imagecoding.learn.run import LearnSettings, learn_variable, scheme_phrase_points
from imagecoding.outputs import atomic_directory, write_json
from imagecoding.schemes import load_scheme
from imagecoding.tuning import from_resources
from imagecoding.validation.annotations import study_gold
from imagecoding.validation.variables import load_variables

config, params, inputs = snakemake.params.settings, snakemake.params, snakemake.input
device = from_resources(snakemake.resources, "device")["device"]
validation, learned = config["validation"], config["learned"]
weights = json.load(open(inputs.weights))
variables = load_variables(config)
manifest = pd.read_parquet(inputs.manifest)
# The gold standard validation_metrics judges against: the learner learns from the gold it is judged on. Codes whose
# value is no longer a category (a scheme was edited) are left out of it, and named per variable.
study = study_gold(list(inputs.annotations), variables, manifest, validation)
gold = study.gold
outside = study.outside.groupby("variable")["value"].value_counts()
image_ids, failed = read_index(inputs.index)
store = EmbeddingStore(os.path.join(params.store_dir, weights["store_key"]))
found_ids, matrix = store.read_embeddings(sorted(set(gold["image_id"]) & set(image_ids)))
vectors = dict(zip(found_ids, matrix.astype("float64")))
over_store = partial(scores_from_store, weights, params.store_dir, image_ids)
embedding = {k: weights[k] for k in ("model", "pretrained", "weights_sha256", "precision", "store_key")}
settings = LearnSettings(**{k: v for k, v in learned.items() if k != "enabled"}, top_k=config["clip"]["top_k"])
settings.curve_sizes = tuple(settings.curve_sizes)
# Copies of one picture stay in one cross-validation fold (results/duplicates/groups.parquet).
groups = pd.read_parquet(inputs.groups).set_index("image_id")["duplicate_group"]
schemes = {name: load_scheme(name, path) for name, path in config["clip"]["schemes"].items()}

with atomic_directory(snakemake.output[0]) as folder:
    for variable in variables:
        variable_gold = gold[gold["variable"] == variable.name].set_index("image_id")["value"]
        points = None
        if variable.name in schemes and settings.phrase_points:
            scheme = schemes[variable.name]
            phrases, _, _ = phrase_embeddings(weights, list(scheme.phrases), params.store_dir, device, params.cache_dir)
            points = scheme_phrase_points(scheme, phrases)
        result = learn_variable(variable.name, list(variable.values), variable_gold, vectors, over_store, settings,
                                embedding, points, outside.get(variable.name, pd.Series(dtype=int)).to_dict(), groups)
        result.card["failed_to_embed"] = {"count": len(failed)}
        result.card["scikit_learn"] = sklearn.__version__
        result.table.to_parquet(folder / f"{variable.name}.parquet", index=False)
        result.curve.to_csv(folder / f"{variable.name}_curve.csv", index=False)
        if result.model is not None:
            write_json(folder / f"{variable.name}_model.json", result.model)
        write_json(folder / f"{variable.name}.json", result.card)
        card = result.card
        if card["status"] == "skipped":
            logging.warning("%s: not learned: %s", variable.name, card["reason"])
        else:
            logging.info(
                "%s: learned from %d codes (%s), C=%g, phrase points %s; out of fold accuracy %.3f, macro-F1 %.3f, "
                "kappa %.3f; %d images predicted", variable.name, card["n_codes"],
                ", ".join(f"{c} {n}" for c, n in card["n_per_class"].items()), card["C"],
                "used" if card["phrase_points"]["used"] else "not used", card["out_of_fold"]["accuracy"],
                card["out_of_fold"]["macro_f1"], card["out_of_fold"]["kappa"], card["predicted_images"],
            )
        if card["not_embedded"]["count"]:
            logging.warning("%s: %d codes are on images that did not embed (not used): %s", variable.name,
                            card["not_embedded"]["count"], ", ".join(card["not_embedded"]["image_ids"]))
        if card["outside_categories"]:
            logging.warning("%s: codes whose value is no longer a category (not used): %s", variable.name,
                            ", ".join(f"{v} ×{n}" for v, n in card["outside_categories"].items()))
