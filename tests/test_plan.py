"""The plan: which methods, LLM tasks and steps a configuration runs, decided once for rules and library alike."""

import copy
import re
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from imagecoding.config import pick
from imagecoding.plan import VARIABLE_KEYS, methods_of, study_plan
from imagecoding.validation.variables import coded_variables_of

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"
BUNDLED = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
ALWAYS = ("manifest", "duplicates", "clip_weights", "clip_embed", "clip_score", "merge")
LAST = ("validation_design", "validation_export", "estimates")
MAPPING = {"image_type": {"variable": "Event_Occasion", "values": {"CampaignMaterial": "Campaign material"}}}


def merged(base: dict, change: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in change.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) and value else value
    return out


def configured(**change) -> dict:
    """The bundled configuration with `change` merged in, validated with its defaults as the workflow does."""
    config = merged(BUNDLED, change)
    validate(config, schema=str(SCHEMA), set_default=True)
    return config


CONFIGS = {
    "bundled": {},
    "frames": {"frames": {"enabled": True}, "consensus": {"frames": MAPPING}},
    "signals only": {"ensemble": {"enabled": True, "classify": False}},
    "ensemble": {"ensemble": {"enabled": True, "classify": True}},
    "routed": {"route": {"enabled": True}},
    "learned, no codes": {"learned": {"enabled": True}},
    "everything": {"frames": {"enabled": True}, "ensemble": {"enabled": True}, "route": {"enabled": True},
                   "learned": {"enabled": True}, "validation": {"annotations": ["codes.csv"]},
                   "signals": {"captions": {"method": "llm"}}},
    "stability": {"frames": {"enabled": True}, "multimodal": {"enabled": True}, "stability": {"enabled": True}},
}


def test_the_bundled_study_runs_clip_alone():
    plan = study_plan(configured())
    assert plan.schemes == tuple(sorted(BUNDLED["clip"]["schemes"]))
    assert plan.signals == () and plan.llm_tasks == () and plan.annotations == ()
    assert plan.methods.of_schemes == ("clip",)
    assert not plan.methods.consensus
    assert plan.report_steps == ALWAYS + LAST


def test_frame_coding_adds_its_task_its_step_and_the_mapped_consensus():
    plan = study_plan(configured(**CONFIGS["frames"]))
    assert plan.llm_tasks == ("frames",)
    assert plan.methods.mapped_frames == ("image_type",) and plan.methods.consensus
    assert plan.methods.of_codebook == ("frames",)
    assert plan.report_steps == ALWAYS + ("frames_code", "consensus", "llm_ledger") + LAST
    # The mapping is kept in the configuration, but with frame coding off there is nothing to map.
    off = study_plan(configured(consensus={"frames": MAPPING}))
    assert off.methods.mapped_frames == () and not off.methods.consensus and off.llm_tasks == ()


def test_signals_without_classifying_run_no_llm_and_no_consensus():
    plan = study_plan(configured(**CONFIGS["signals only"]))
    assert plan.signals == tuple(BUNDLED["ensemble"]["signals"])
    assert not plan.methods.ensemble and not plan.methods.consensus and plan.llm_tasks == ()
    assert plan.weight_steps == ("objects_weights", "captions_weights")
    assert [s for s in plan.report_steps if s.startswith("signals_")] == [f"signals_{s}" for s in plan.signals]


def test_the_ensemble_classifying_codes_the_schemes_and_asks_the_llm():
    plan = study_plan(configured(**CONFIGS["ensemble"]))
    assert plan.methods.of_schemes == ("clip", "ensemble", "consensus")
    assert plan.llm_tasks == ("ensemble",)
    assert "ensemble_classify" in plan.report_steps and "consensus" in plan.report_steps


def test_routing_asks_the_multimodal_llm_even_when_it_is_off():
    config = configured(**CONFIGS["routed"])
    assert config["multimodal"]["enabled"] is False
    plan = study_plan(config)
    assert plan.methods.multimodal and plan.methods.routed
    assert plan.llm_tasks == ("multimodal",)
    assert plan.methods.of_schemes == ("clip", "multimodal", "routed", "consensus")
    assert "multimodal_classify" in plan.report_steps


def test_the_learner_runs_only_with_codes_to_learn_from():
    without_codes = study_plan(configured(**CONFIGS["learned, no codes"]))
    assert not without_codes.methods.learned and "learned_fit" not in without_codes.report_steps
    with_codes = study_plan(configured(learned={"enabled": True}, validation={"annotations": "codes.csv"}))
    assert with_codes.annotations == ("codes.csv",)
    assert with_codes.methods.of_schemes == ("clip", "learned", "consensus")
    assert with_codes.methods.of_codebook == ("frames", "learned")
    assert {"learned_fit", "validation_metrics"} <= set(with_codes.report_steps)


def test_llm_captions_are_a_task_and_fetch_no_weights():
    plan = study_plan(configured(**CONFIGS["everything"]))
    assert plan.llm_tasks == ("frames", "ensemble", "multimodal", "captions")
    assert plan.weight_steps == ("objects_weights",)
    assert "captions_weights" not in plan.report_steps


@pytest.mark.parametrize("name", CONFIGS)
def test_a_step_given_only_the_variable_settings_sees_the_same_methods(name):
    config = configured(**CONFIGS[name])
    assert methods_of(pick(config, *VARIABLE_KEYS)) == study_plan(config).methods


@pytest.mark.parametrize("name", ["bundled", "frames", "everything"])
def test_the_coded_variables_carry_the_plans_methods(name, monkeypatch):
    monkeypatch.chdir(REPO)  # the bundled scheme and codebook paths are relative to the workflow
    config = configured(**CONFIGS[name])
    methods = study_plan(config).methods
    variables = coded_variables_of(pick(config, *VARIABLE_KEYS))
    schemes = set(config["clip"]["schemes"])
    assert {v.methods for v in variables if v.name in schemes} == {methods.of_schemes}
    assert {v.methods for v in variables if v.name not in schemes} <= {methods.of_codebook}
    assert any(v.name not in schemes for v in variables) == methods.frames


def test_every_step_the_report_reads_is_a_rule():
    rules = set(re.findall(r"^rule (\w+):", "".join(p.read_text() for p in (REPO / "rules").glob("*.smk")), re.M))
    steps = {step for change in CONFIGS.values() for step in study_plan(configured(**change)).report_steps}
    assert {"objects_weights", "captions_weights", "learned_fit", "validation_metrics", "stability_metrics"} <= steps
    assert steps <= rules
