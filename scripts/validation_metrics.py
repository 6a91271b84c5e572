"""Snakemake entry for rule validation_metrics: human codes in, gold standard, every method's agreement with it."""

import logging

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd

from imagecoding.outputs import atomic_directory, write_csv
from imagecoding.validation.annotations import study_gold
from imagecoding.validation.metrics import METRIC_COLUMNS, against_coders, against_gold, between_coders, sentences
from imagecoding.validation.predictions import rule_predictions
from imagecoding.validation.sample import sample_validity
from imagecoding.validation.variables import coded_variables_of

config, inputs, outputs = snakemake.params.settings, snakemake.input, snakemake.output
settings = config["validation"]
variables = coded_variables_of(config)
manifest = pd.read_parquet(inputs.manifest)
study = study_gold(list(inputs.annotations), variables, manifest, settings)
codes, report, gold, ties = study.codes, study.report, study.gold, study.ties
report = pd.concat([report, pd.DataFrame([
    {"source": "all", "problem": "tied items settled by the adjudicator", "count": int(ties["resolved"].sum())},
    {"source": "all", "problem": "tied items left out (no adjudicator code)", "count": int((~ties["resolved"]).sum())},
])], ignore_index=True)
# Codes on the workflow's own probability sample weigh 1 / inclusion probability, so every figure describes the
# corpus; a single code elsewhere (picked by hand, an old sheet) makes the sample not a probability sample.
weights, weighted, reason, outside = sample_validity(pd.read_parquet(inputs.design), gold["image_id"])
if not weighted and len(gold):
    logging.warning("%s%s: the codes are not a probability sample, so the metrics are not weighted and describe the "
                    "coded images only.%s", reason, f" (e.g. {', '.join(map(str, outside[:5]))})" if outside else "",
                    " Code only images of results/validation/sample.csv, or leave out the files holding the others."
                    if outside else "")
report = pd.concat([report, pd.DataFrame([
    {"source": "all", "problem": "coded images the workflow's sample did not draw (not a probability sample)",
     "count": len(outside)}])], ignore_index=True)
predictions = rule_predictions(variables, inputs)
rows, confusions = [], {}
for variable in variables:
    values = list(variable.values)
    variable_codes = codes[codes["variable"] == variable.name]
    variable_gold = gold[gold["variable"] == variable.name].set_index("image_id")["value"]
    for method in variable.methods:
        predicted = predictions.get(method, {}).get(variable.name)
        if predicted is None:
            continue
        found, matrix = against_gold(method, variable.name, predicted, variable_gold, values, settings["bootstrap"], settings["seed"],
                                     weights if weighted else None)
        rows += found + against_coders(method, variable.name, predicted, variable_codes)
        confusions[f"{method}__{variable.name}.csv"] = matrix
    rows += between_coders(variable.name, variable_codes, values)
metrics = pd.DataFrame(rows, columns=METRIC_COLUMNS)
metrics["weighted"] = weighted & (metrics["against"] == "gold")
logging.info("%d codes by %d coders; %d gold items\n%s", len(codes), codes["coder"].nunique(), len(gold), "\n".join(sentences(metrics)))
logging.info("import report:\n%s", report.to_string(index=False))
write_csv(metrics, outputs.metrics)
write_csv(codes, outputs.codes)
write_csv(gold, outputs.gold)
write_csv(report, outputs.report)
with atomic_directory(outputs.confusion) as folder:
    for name, matrix in confusions.items():
        matrix.to_csv(folder / name)
