"""Scheme classification by a multimodal LLM on the engine: what each request carries, how answers are checked,
and routing's two phases through the same cache, budget and batch mode as every LLM task."""

import pandas as pd
import pytest
from snakemake.utils import validate

from conftest import gps_photos
from imagecoding.routing.cheap import Cheap
from imagecoding.routing.run import RouteSettings, route
from imagecoding.schemes import load_scheme
from imagecoding.tasks.ensemble import scheme_codebook
from imagecoding.tasks.multimodal import multimodal_run
from llm_server import FakeLLM

from test_frames import REPO, SCHEMA

SCHEME = REPO / "config" / "schemes" / "image_types.yaml"


@pytest.fixture
def fake():
    server = FakeLLM(scheme_codebook([load_scheme("image_type", SCHEME)], 200).json_schema()).start()
    yield server
    server.stop()


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "sk-multimodal-test")
    root = tmp_path / "images"
    paths = gps_photos(root, 12, seed=3, size=(300, 400))
    rows = [{"image_id": f"{index:064x}", "path": path.name, "status": "ok"} for index, path in enumerate(paths)]
    return root, pd.DataFrame(rows)


def make_config(tmp_path, root, fake, **llm):
    config = {
        "images": {"root": str(root)},
        "clip": {"schemes": {"image_type": str(SCHEME)}},
        "multimodal": {"enabled": True, "prompt": str(REPO / "config" / "prompts" / "multimodal.j2")},
        "llm": {"base_url": fake.base_url, "model": "test-vision", "api_key_env": "TEST_LLM_KEY",
                "prices": {"test-vision": {"input": 2.0, "output": 8.0}}, "cache": str(tmp_path / "cache" / "llm.sqlite"),
                "backoff_base_s": 0.01, "max_concurrency": 2, "batch": {"poll_seconds": 0.01}, **llm},
    }
    validate(config, str(SCHEMA), set_default=True)
    return config


def test_each_request_shows_the_image_and_the_schemes_phrases_and_answers_are_checked(tmp_path, corpus, fake):
    root, manifest = corpus
    config = make_config(tmp_path, root, fake)
    run = multimodal_run(config, manifest)
    body = run.task.body(run.requests[0])
    parts = body["messages"][-1]["content"]
    prompt = parts[0]["text"]
    scheme = load_scheme("image_type", SCHEME)
    for category in scheme.categories:
        assert f"- {category}: " + "; ".join(scheme.phrases_of(category)) in prompt
    assert parts[-1]["type"] == "image_url" and parts[-1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert body["response_format"]["json_schema"]["strict"] and body["response_format"]["json_schema"]["name"] == "multimodal"
    fake.plan(_payload(run.task, run.requests[1]), "out_of_codebook")
    table = run.execute()
    assert len(table) == 12 and (table["status"] == "ok").sum() == 11
    assert table.loc[1, "status"] == "invalid" and "Spaceship" in table.loc[1, "error"]
    assert set(table.loc[table["status"] == "ok", "image_type"]) <= set(scheme.categories)
    assert table["image_type_reason"].notna().sum() == 12


def _payload(task, request) -> str:
    """The test server's name for the image a request carries."""
    import hashlib

    url = task.body(request)["messages"][-1]["content"][-1]["image_url"]["url"]
    return hashlib.sha256(url.split(",", 1)[1].encode()).hexdigest()


def routing_inputs(manifest):
    """A cheap method sure and right on the first half of the images, unsure and wrong on the rest; codes on four of
    them. The test server answers every image with the scheme's first category, which is the truth throughout."""
    first, second = load_scheme("image_type", SCHEME).categories[:2]
    ids = pd.Index(manifest["image_id"])
    confidence = pd.Series([0.99] * 6 + [0.3] * 6, ids)
    cheap = Cheap("learned", pd.Series([first] * 6 + [second] * 6, ids), confidence, pd.Series(True, ids))
    gold = pd.Series(first, ids[[0, 1, 6, 7]])
    return {"image_type": cheap}, {"image_type": gold}, pd.Series(1.0, gold.index)


@pytest.mark.parametrize("mode", ["sync", "batch"])
def test_routing_asks_the_coded_images_first_then_the_unsure_ones_in_one_budget(tmp_path, corpus, fake, mode):
    root, manifest = corpus
    config = make_config(tmp_path, root, fake, mode=mode)
    run = multimodal_run(config, manifest)
    cheap, gold, weights = routing_inputs(manifest)
    settings = RouteSettings(enabled=True, target_accuracy=0.5, delta=0.5)
    planned = route(run, cheap, gold, weights, True, settings, ask=False)
    assert len(fake.log) == 0 and planned.table.empty  # the estimate sends nothing
    assert [r.image_id for r in planned.coded] == list(gold["image_type"].index)
    routing = route(run, cheap, gold, weights, True, settings)
    asked = [r.image_id for r in routing.coded + routing.rest]
    assert asked[:4] == list(gold["image_type"].index)  # the coded images first
    assert set(asked[4:]) == set(manifest["image_id"][8:])  # then the unsure, uncoded rest; the sure ones never
    assert routing.routes["image_type"].threshold == pytest.approx(0.3) and routing.routes["image_type"].certified
    assert len(fake.log) == 8 and (routing.table["status"] == "ok").all()
    if mode == "batch":
        assert len(fake.batches) == 2  # one per phase
    again = route(run, cheap, gold, weights, True, settings)
    assert len(fake.log) == 8 and again.table["cached"].all()  # a re-run pays nothing


def test_one_budget_caps_both_phases(tmp_path, corpus, fake):
    """Both phases spend from one Budget, so llm.max_cost_usd caps the step, not each phase; the coded images,
    asked first, are answered before the budget can run out on the rest."""
    root, manifest = corpus
    run = multimodal_run(make_config(tmp_path, root, fake, max_cost_usd=1.0), manifest)
    budgets = []
    answer = run.engine.answer
    run.engine.answer = lambda task, requests, progress=None, budget=None: budgets.append(budget) or answer(
        task, requests, progress, budget)
    cheap, gold, weights = routing_inputs(manifest)
    routing = route(run, cheap, gold, weights, True, RouteSettings(enabled=True, target_accuracy=0.5, delta=0.5))
    assert len(budgets) == 2 and budgets[0] is budgets[1] and budgets[0].limit == 1.0
    assert budgets[0].spent == pytest.approx(routing.table["cost_usd"].sum())

    # A budget for about three answers: the coded images come first, and what is left is skipped, not paid.
    config = make_config(tmp_path / "small", root, fake, max_tokens=100)
    small = multimodal_run(config, manifest)
    config["llm"]["max_cost_usd"] = limit = 3 * small.engine.budget(small.task).worst_case
    small = multimodal_run(config, manifest)
    table = route(small, cheap, gold, weights, True, RouteSettings(enabled=True, target_accuracy=0.5, delta=0.5)).table
    assert table["cost_usd"].sum() <= limit and (table["status"] == "skipped_budget").any()
    assert table.iloc[0]["status"] == "ok" and table.iloc[0]["image_id"] == gold["image_type"].index[0]
