"""Snakemake entry for rule consensus: each method's category per image, the majority, and pairwise agreement."""

import logging

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

from pathlib import Path

import pandas as pd

from imagecoding.llm.task import CODED
from imagecoding.consensus import consensus_table, frames_as_scheme, pairwise_agreement
from imagecoding.outputs import write_csv, write_parquet
from imagecoding.schemes import load_scheme

config = snakemake.params.settings
schemes = sorted(config["clip"]["schemes"])
ensemble = pd.read_parquet(snakemake.input.ensemble[0]) if snakemake.input.ensemble else None
multimodal = pd.read_parquet(snakemake.input.multimodal[0]) if snakemake.input.multimodal else None
frames = pd.read_parquet(snakemake.input.frames[0]) if snakemake.input.frames else None
learned = Path(snakemake.input.learned[0]) if snakemake.input.learned else None
mapping = config["consensus"]["frames"]
agreement = []
for scheme_name, scores_path, output in zip(schemes, snakemake.input.scores, snakemake.output.tables):
    scheme = load_scheme(scheme_name, config["clip"]["schemes"][scheme_name])
    scores = pd.read_parquet(scores_path)
    methods = {"clip": scores.set_index("image_id")[scheme_name]}
    if learned is not None:  # out of fold on the coded images, so the consensus's metrics stay honest too
        table = pd.read_parquet(learned / f"{scheme_name}.parquet")
        if len(table):
            methods["learned"] = table.set_index("image_id")[scheme_name]
    for name, table in (("ensemble", ensemble), ("multimodal", multimodal)):
        if table is not None:  # the multimodal LLM votes where it was asked (all images, or those routing sent)
            answered = table[table["status"].isin(CODED)]
            methods[name] = answered.set_index("image_id")[scheme_name]
    if frames is not None and scheme_name in mapping:
        rule = mapping[scheme_name]
        methods["frames"] = frames_as_scheme(frames, rule["variable"], rule["values"], list(scheme.categories))
    table = consensus_table(list(scores["image_id"]), methods)
    pairs = pairwise_agreement(scheme_name, table, list(methods), list(scheme.categories))
    agreement.append(pairs)
    logging.info(
        "%s: %d images, methods %s, %d split\n%s", scheme_name, len(table), ", ".join(methods), int(table["split"].sum()),
        pairs.to_string(index=False),
    )
    write_parquet(table, output)
write_csv(pd.concat(agreement, ignore_index=True), snakemake.output.agreement)
