import os
import sys
from functools import cache

from snakemake.utils import validate

sys.path.insert(0, os.path.join(workflow.basedir, "scripts"))

from imagecoding.config import check_config, check_schema
from imagecoding.manifest import configured_image_paths, listing_fingerprint

check_schema(config, os.path.join(workflow.basedir, "config/schema/config.schema.yaml"))
validate(config, schema="../config/schema/config.schema.yaml", set_default=True)
check_config(config)

SCHEMES = sorted(config["clip"]["schemes"])
SHARDS = [f"{i}-of-{config['clip']['shards']}" for i in range(config["clip"]["shards"])]


wildcard_constraints:
    scheme="|".join(SCHEMES),
    shard=r"\d+-of-\d+",


@cache
def image_listing():
    """Which image files exist, with sizes and mtimes; re-runs the manifest when it changes."""
    return listing_fingerprint(configured_image_paths(config), config["images"]["root"])


def posts_table(wildcards):
    return [config["posts"]["path"]] if config["posts"]["path"] else []


def clip_model_params():
    clip = config["clip"]
    return {
        "model": clip["model"],
        "pretrained": clip["pretrained"],
        "model_config": clip["model_config"],
        "draft": clip["draft"],
    }


def llm_params():
    """LLM settings that shape answers and costs; changing them re-runs frame coding (the cache still answers)."""
    return {key: value for key, value in config["llm"].items()}


def frame_results():
    return ["results/llm/frames.parquet"] if config["frames"]["enabled"] else []


def scheme_file(wildcards):
    return config["clip"]["schemes"][wildcards.scheme]
