"""Snakemake entry for rule duplicates: every decodable image's near-duplicate group, from the manifest's thumbnails."""

import logging

from imagecoding.job_log import log_to

log_to(snakemake.log[0])

import pandas as pd

from imagecoding.duplicates.groups import Settings, duplicate_groups, singleton_groups
from imagecoding.manifest import distinct_decodable
from imagecoding.outputs import write_parquet

block = snakemake.params.settings["duplicates"]
manifest = pd.read_parquet(snakemake.input.manifest)
images = distinct_decodable(manifest)[["image_id", "width", "height"]].reset_index(drop=True)
images["first_seen"] = range(len(images))  # manifest order (by path) breaks ties between equally large copies
thumbnails = pd.read_parquet(snakemake.input.thumbnails)
if block["enabled"]:
    images = images.merge(thumbnails, on="image_id", how="left")
    with_thumbnail = images["thumbnail"].notna()
    logging.info("%d decodable images, %d with a thumbnail to compare", len(images), int(with_thumbnail.sum()))
    groups = pd.concat([duplicate_groups(images[with_thumbnail], Settings.from_config(block)),
                        singleton_groups(images.loc[~with_thumbnail, "image_id"])], ignore_index=True)
else:
    logging.info("duplicates.enabled is off: each of %d images is its own group", len(images))
    groups = singleton_groups(images["image_id"])
copies = groups[groups["group_size"] > 1]
logging.info("%d images in %d groups; %d groups have copies, holding %d images; largest group %d",
             len(groups), groups["duplicate_group"].nunique(), copies["duplicate_group"].nunique(), len(copies),
             int(groups["group_size"].max()) if len(groups) else 0)
write_parquet(groups.sort_values("image_id", ignore_index=True), snakemake.output.groups)
