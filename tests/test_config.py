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


def ensemble_config(tmp_path, **ensemble) -> dict:
    config = {
        "images": {"root": str(tmp_path)},
        "ensemble": {"enabled": True, **ensemble},
        "llm": {"base_url": "http://127.0.0.1:9/v1", "prices": {"gpt-4o-mini": {"input": 0, "output": 0}}},
    }
    validate(config, str(SCHEMA), set_default=True)
    return config


def test_a_broken_scheme_stops_the_run_before_any_work(tmp_path):
    scheme = tmp_path / "kinds.yaml"
    scheme.write_text("Poster:\n  - a poster\nRally: []\n")
    config = {"images": {"root": str(tmp_path)}, "clip": {"schemes": {"kind": str(scheme)}}}
    validate(config, str(SCHEMA), set_default=True)
    (problem,) = config_problems(config)
    assert str(scheme) in problem and "category 'Rally' needs a non-empty list of phrases" in problem


def test_ensemble_settings_are_checked_at_start_up(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    prompt = tmp_path / "no-blocks.j2"
    prompt.write_text("Classify {{ caption }}")
    config = ensemble_config(tmp_path, prompt=str(prompt), signals=["ocr", "tags", "vision"])
    config["signals"]["ocr"]["languages"] = "deu+klingon"
    config["signals"]["tags"]["vocabulary"] = str(tmp_path / "words.yaml")
    monkeypatch.delenv("GOOGLE_VISION_API_KEY", raising=False)
    problems = config_problems(config)
    assert any("signals.ocr.languages" in p and "klingon" in p for p in problems)
    assert any("signals.tags.vocabulary: no file" in p for p in problems)
    assert any("GOOGLE_VISION_API_KEY is not set" in p for p in problems)
    assert any("ensemble.prompt" in p and "{% block instructions %}" in p for p in problems)
    assert not any("signals.ocr" in p for p in config_problems(config, uses_conda=True))  # conda brings Tesseract


def test_consensus_mappings_are_checked_against_codebook_and_scheme(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    config = ensemble_config(tmp_path)
    config["frames"]["enabled"] = True
    config["consensus"]["frames"] = {
        "image_type": {"variable": "Event_Occasion", "values": {"Rally": "Political event", "Protest": "Riot"}},
        "no_such_scheme": {"variable": "Event_Occasion", "values": {}},
    }
    problems = "\n".join(config_problems(config))
    assert "'Rally' is not a value of Event_Occasion" in problems
    assert "'Riot' is not a category of image_type" in problems
    assert "there is no scheme 'no_such_scheme'" in problems


def test_a_study_without_images_is_told_what_to_write():
    from imagecoding.config import check_study

    with pytest.raises(ConfigError, match="copy config/config.yaml"):
        check_study({"posts": {"path": "posts.csv"}})


def test_bundled_files_are_found_from_another_working_directory(tmp_path, monkeypatch):
    from imagecoding.config import resolve_bundled_files

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("A: [a]\nB: [b]\n")
    config = {"images": {"root": "."}, "clip": {"schemes": {"own": "mine.yaml", "bundled": "config/schemes/image_types.yaml"}}}
    validate(config, str(SCHEMA), set_default=True)
    resolve_bundled_files(config, REPO)
    assert config["clip"]["schemes"] == {"own": "mine.yaml", "bundled": str(REPO / "config/schemes/image_types.yaml")}
    assert config["ensemble"]["prompt"] == str(REPO / "config/prompts/ensemble.j2")
    assert config_problems(config) == []
