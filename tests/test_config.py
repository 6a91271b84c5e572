"""Configuration: the schema catches wrong keys and types, and missing files are named with their key."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from imagecoding.config import ConfigError, check_config, check_schema, config_problems

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"
BUNDLED = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def bundled() -> dict:
    return copy.deepcopy(BUNDLED)


def test_the_bundled_config_is_valid():
    check_schema(bundled(), SCHEMA)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c["clip"].update(modle="ViT-B-32"), "clip.modle: unknown key"),
        (lambda c: c["clip"].update(batch_size="big"), "clip.batch_size: 'big' is not of type 'integer'"),
        (lambda c: c["clip"].update(aggregate="median"), "clip.aggregate: 'median' is not one of"),
        (lambda c: c["clip"].update(device="gpu"), "clip.device"),
        (lambda c: c.update(imagez={}), "imagez: unknown key"),
        (lambda c: c["images"].pop("root"), "'root' is a required property"),
        (lambda c: c["clip"]["schemes"].update({"bad name": "x.yaml"}), "clip.schemes"),
    ],
)
def test_schema_mistakes_name_the_key(change, expected):
    config = bundled()
    change(config)
    with pytest.raises(ConfigError, match="does not match") as raised:
        check_schema(config, SCHEMA)
    assert expected in str(raised.value)


def test_unknown_key_message_lists_the_known_keys():
    config = bundled()
    config["report"]["sample_size"] = 3
    with pytest.raises(ConfigError) as raised:
        check_schema(config, SCHEMA)
    assert "samples_per_category" in str(raised.value)


def test_snakemake_validation_fills_defaults():
    config = {"images": {"root": "photos"}}
    validate(config, str(SCHEMA), set_default=True)
    assert config["clip"]["model"] == "ViT-B-32"
    assert config["clip"]["aggregate"] == "max"
    assert config["images"]["extensions"][0] == "jpg"
    assert config["posts"]["path"] is None
    assert config["report"]["samples_per_category"] == 12


def test_missing_files_are_all_named_at_once(tmp_path):
    config = {
        "images": {"root": str(tmp_path / "nothing")},
        "posts": {"path": str(tmp_path / "posts.csv")},
        "clip": {"schemes": {"kind": str(tmp_path / "kind.yaml")}},
    }
    validate(config, str(SCHEMA), set_default=True)
    config["clip"]["pretrained"] = str(tmp_path / "weights.pt")
    problems = config_problems(config)
    assert [p.split(":")[0] for p in problems] == ["images.root", "posts.path", "clip.schemes.kind", "clip.pretrained"]
    with pytest.raises(ConfigError, match="images.root"):
        check_config(config)


def test_model_config_must_name_the_model(tmp_path):
    model_config = tmp_path / "my-net.json"
    model_config.write_text("{}")
    config = {"images": {"root": str(tmp_path)}, "clip": {"model": "ViT-B-32", "model_config": str(model_config)}}
    validate(config, str(SCHEMA), set_default=True)
    config["clip"]["schemes"] = {}
    assert any("set clip.model: my-net" in p for p in config_problems(config))
