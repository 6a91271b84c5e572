"""Whether an LLM task agrees with itself: repeats and prompt variants as real, cached requests, measured as coders.

The test server answers at random a known share of the time (FakeLLM noise); the alpha it should then give is
derived by simulating that very process, and the band it must land in is the simulation's own spread.
"""

from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from snakemake.utils import validate

from imagecoding.plan import study_plan
from imagecoding.schemes import load_scheme
from imagecoding.stability.asking import ask, repeated, sample_images, stability_requests
from imagecoding.stability.figures import apply_vote, per_image, sentences, stability_metrics
from imagecoding.stability.step import task_variables
from imagecoding.tasks.ensemble import ensemble_run, scheme_codebook
from imagecoding.validation.variables import CodedVariable
from llm_server import FakeLLM

REPO = Path(__file__).resolve().parent.parent
SCHEME = REPO / "config" / "schemes" / "image_types.yaml"
NOISE = 0.3  # the share of answers the server draws at random
IMAGES, REPEATS = 150, 3
SIMULATIONS = 2000


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "sk-stability")


def serve(noise: float) -> FakeLLM:
    schema = scheme_codebook([load_scheme("image_type", SCHEME)], 200).json_schema()
    return FakeLLM(schema, text_only=("ensemble",), varied=True, noise=noise, noise_seed=7).start()


def corpus(n: int):
    ids = [f"{i:064x}" for i in range(n)]
    manifest = pd.DataFrame({"image_id": ids, "path": [f"img{i}.jpg" for i in range(n)], "status": "ok"})
    ocr = pd.DataFrame({"image_id": ids, "text": [f"Poster number {i}" for i in range(n)], "confidence": 90.0,
                        "words": 3, "status": "ok", "error": None})
    return manifest, {"ocr": ocr}


def make_config(tmp_path, fake, **stability):
    config = {
        "images": {"root": str(tmp_path)},
        "clip": {"schemes": {"image_type": str(SCHEME)}},
        "ensemble": {"enabled": True, "signals": ["ocr"], "prompt": str(REPO / "config" / "prompts" / "ensemble.j2")},
        "stability": {"enabled": True, "repeats": REPEATS, "sample_size": IMAGES, **stability},
        # One request at a time: the server's seeded draws then fall on the same requests in every run.
        "llm": {"base_url": fake.base_url, "model": "test-model", "api_key_env": "TEST_LLM_KEY", "max_concurrency": 1,
                "prices": {"test-model": {"input": 1.0, "output": 4.0}}, "cache": str(tmp_path / "llm.sqlite"),
                "backoff_base_s": 0.01},
    }
    validate(config, str(REPO / "config" / "schema" / "config.schema.yaml"), set_default=True)
    return config


def stability_of(config, manifest, signals):
    build = lambda c: ensemble_run(c, manifest, signals)  # noqa: E731
    run = build(config)
    table = run.execute()
    asked = stability_requests("ensemble", config, build, run, None)
    answers = ask(asked, table)
    return run, table, answers


def simulated_alpha(n: int, coders: int, categories: int, noise: float, runs: int, seed: int = 1) -> np.ndarray:
    """Alpha of `coders` repeats that each give an image's own category, except a `noise` share drawn uniformly."""
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(runs):
        own = rng.integers(0, categories, n)
        answers = np.where(rng.random((coders, n)) < noise, rng.integers(0, categories, (coders, n)), own)
        found.append(krippendorff.alpha(reliability_data=answers.astype(float), level_of_measurement="nominal",
                                        value_domain=list(range(categories))))
    return np.array(found)


def test_alpha_across_repeats_lands_where_the_random_share_puts_it(tmp_path):
    fake = serve(NOISE)
    try:
        manifest, signals = corpus(IMAGES)
        config = make_config(tmp_path, fake, bootstrap=300)
        run, table, answers = stability_of(config, manifest, signals)
        # Every repeat is a real request the first time: the task's own answers and R - 1 more per image.
        assert len(fake.log) == IMAGES * REPEATS
        variables = task_variables(run)
        metrics = stability_metrics("ensemble", answers, variables, {"model": "test-model", "temperature": None, "seed": None},
                                    bootstrap=300)
    finally:
        fake.stop()
    alpha = metrics.query("metric == 'krippendorff_alpha' and kind == 'repeat'").iloc[0]
    categories = len(variables[0].values)
    simulated = simulated_alpha(IMAGES, REPEATS, categories, NOISE, SIMULATIONS)
    # Where the random share puts alpha, and the band 99.8% of runs of that very process land in.
    expected, (low, high) = simulated.mean(), np.quantile(simulated, [0.001, 0.999])
    print(f"\nnoise {NOISE}, {categories} categories, {IMAGES} images, {REPEATS} repeats: alpha {alpha['value']:.3f} "
          f"[{alpha['ci_low']:.3f}, {alpha['ci_high']:.3f}], expected {expected:.3f} (simulated 99.8% band "
          f"[{low:.3f}, {high:.3f}]; (1 - noise)^2 = {(1 - NOISE) ** 2:.3f})")
    assert low <= alpha["value"] <= high
    assert alpha["ci_low"] <= alpha["value"] <= alpha["ci_high"]
    assert alpha["n"] == IMAGES and alpha["coders"] == REPEATS
    agreement = metrics.query("metric == 'percent_agreement' and kind == 'repeat'").iloc[0]
    # All three agree when no answer is drawn at random, or the draws happen to match: at least (1 - noise)^3.
    assert agreement["value"] >= 100 * (1 - NOISE) ** REPEATS - 10
    assert "test-model" in set(metrics["model"])


def test_repeats_are_asked_once_then_answered_from_the_cache(tmp_path):
    fake = serve(0.0)
    try:
        manifest, signals = corpus(12)
        config = make_config(tmp_path, fake, sample_size=5)
        _, _, answers = stability_of(config, manifest, signals)
        assert len(fake.log) == 12 + 5 * (REPEATS - 1)
        assert answers["request_key"].nunique() == 5 * REPEATS  # the repeat number is part of every key
        assert not answers.loc[answers["coder"] != "repeat_1", "cached"].any()
        _, _, again = stability_of(config, manifest, signals)
        assert len(fake.log) == 12 + 5 * (REPEATS - 1)  # a re-run pays nothing
        assert again["cached"].all()
        # No noise: every repeat gives the same category; alpha is undefined (one category each) or 1.
        voted = per_image(again, task_variables(ensemble_run(config, manifest, signals)))
        assert (voted["image_type_agreement"] == 1).all()
        estimate = stability_requests("ensemble", config, lambda c: ensemble_run(c, manifest, signals, need_client=False),
                                      ensemble_run(config, manifest, signals, need_client=False), None).estimate()
        assert "requests to make       0" in estimate and "answers in the cache   10" in estimate
    finally:
        fake.stop()


def test_prompt_variants_render_and_are_sent_as_their_own_requests(tmp_path):
    variant = tmp_path / "ensemble_terse.j2"
    own = (REPO / "config" / "prompts" / "ensemble.j2").read_text()
    variant.write_text(own.replace("You classify images", "VARIANT-TERSE: you sort images"))
    fake = serve(0.0)
    try:
        manifest, signals = corpus(6)
        config = make_config(tmp_path, fake, repeats=1, sample_size=4, prompt_variants={"ensemble": [str(variant)]})
        estimate = stability_requests("ensemble", config, lambda c: ensemble_run(c, manifest, signals, need_client=False),
                                      ensemble_run(config, manifest, signals, need_client=False), None).estimate()
        assert "requests to make       4" in estimate and "variant_1" in estimate
        run, _, answers = stability_of(config, manifest, signals)
        sent = [entry for entry in fake.log if "VARIANT-TERSE" in entry["text"]]
        assert len(sent) == 4 and len(fake.log) == 6 + 4
        assert set(answers["coder"]) == {"repeat_1", "variant_1"}
        metrics = stability_metrics("ensemble", answers, task_variables(run), {}, bootstrap=50)
        assert set(metrics["kind"]) == {"variant"}  # one repeat alone measures nothing
    finally:
        fake.stop()


def test_the_majority_and_its_split_and_the_vote():
    variable = CodedVariable("image_type", ("A", "B", "C"), ("multimodal",))
    answers = pd.DataFrame({
        "image_id": ["x", "y", "z"] * 3,
        "coder": ["repeat_1"] * 3 + ["repeat_2"] * 3 + ["variant_1"] * 3,
        "kind": ["repeat"] * 6 + ["variant"] * 3,
        "image_type": ["A", "B", "C", "B", "B", "A", "B", "B", None],
        "status": ["ok"] * 8 + ["refused"],
    })
    voted = per_image(answers, [variable]).set_index("image_id")
    assert voted.loc["x", "image_type"] == "B" and voted.loc["x", "image_type_split"] == "B 2, A 1"
    assert voted.loc["y", "image_type_agreement"] == 1.0 and voted.loc["y", "image_type_answers"] == 3
    assert voted.loc["z", "image_type"] == "C"  # a tie goes to the task's own answer
    assert voted.loc["x", "image_type__repeat_2"] == "B"
    table = pd.DataFrame({"image_id": ["x", "y", "z", "w"], "image_type": ["A", "B", "C", "A"]})
    assert list(apply_vote(table, voted.reset_index(), [variable])["image_type"]) == ["B", "B", "C", "A"]


def test_sentences_flag_alpha_below_the_thresholds():
    rows = []
    for kind, alpha, coders in (("repeat", 0.86, 3), ("variant", 0.6, 3)):
        rows.append({"task": "multimodal", "variable": "image_type", "kind": kind, "metric": "krippendorff_alpha",
                     "value": alpha, "ci_low": alpha - 0.05, "ci_high": alpha + 0.04, "n": 200, "coders": coders})
        rows.append({"task": "multimodal", "variable": "image_type", "kind": kind, "metric": "percent_agreement",
                     "value": 91.0, "ci_low": 88.0, "ci_high": 94.0, "n": 200, "coders": coders})
    (sentence,) = sentences(pd.DataFrame(rows))
    assert sentence.startswith("The multimodal LLM image_type agrees with itself across 3 repeats on 91% of 200 images, "
                               "α = 0.86 [0.81, 0.90]; across its prompt and 2 prompt variants")
    assert "below 0.667" in sentence


def test_the_sample_is_the_validation_sample_unless_a_size_is_named():
    design = pd.DataFrame({"image_id": ["a", "b", "c"], "round": [1, 0, 2]})
    assert sample_images(["a", "b", "c", "d"], design, None, 1) == ["a", "c"]
    assert len(sample_images(["a", "b", "c", "d"], None, 2, 1)) == 2
    from imagecoding.llm.task import Request

    request = Request("k", "a", None)
    assert repeated(request, 1) is request and repeated(request, 2).key != repeated(request, 3).key


def test_the_plan_asks_the_coding_tasks_again_only_when_stability_is_on(tmp_path):
    config = {"images": {"root": "x"}, "frames": {"enabled": True}, "signals": {"captions": {"method": "llm"}},
              "ensemble": {"enabled": True, "signals": ["captions"]}, "stability": {"enabled": True, "vote": "majority"}}
    validate(config, str(REPO / "config" / "schema" / "config.schema.yaml"), set_default=True)
    plan = study_plan(config)
    assert plan.stability == ("frames", "ensemble") and plan.vote == "majority"
    assert "captions" in plan.llm_tasks and "stability_metrics" in plan.report_steps
    config["stability"]["enabled"] = False
    assert study_plan(config).stability == () and study_plan(config).vote == "first"


def test_the_task_and_its_repeats_share_one_budget(tmp_path):
    fake = serve(0.0)
    try:
        manifest, signals = corpus(8)
        config = make_config(tmp_path, fake, sample_size=8)
        build = lambda c: ensemble_run(c, manifest, signals)  # noqa: E731
        run = build(config)
        table = run.execute()
        # A cap just above what the task's own run paid: no repeat fits in what is left.
        spent = float(table["cost_usd"].sum())
        run.engine.max_cost_usd = spent + run.engine.budget(run.task).worst_case / 2
        answers = ask(stability_requests("ensemble", config, build, run, None), table)
        assert (answers.loc[answers["coder"] != "repeat_1", "status"] == "skipped_budget").all()
        assert len(fake.log) == 8
    finally:
        fake.stop()


def test_impossible_stability_settings_are_named_with_the_fix(tmp_path):
    from imagecoding.stability.asking import stability_problems

    config = {"stability": {"enabled": True, "sample_size": None, "prompt_variants": {"frames": [str(tmp_path / "no.j2")]}},
              "ensemble": {"enabled": True, "classify": True}, "validation": {"design": "uncertainty"}}
    problems = stability_problems(config)
    assert any(p.startswith("stability.sample_size:") and "validation.design: stratified" in p for p in problems)
    assert any(p.startswith("stability.prompt_variants.frames: no prompt template") for p in problems)
    config["stability"]["enabled"] = False
    assert stability_problems(config) == []
