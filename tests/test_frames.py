"""Frame coding against a local OpenAI-compatible server: faults survived, answers checked, nothing paid twice."""

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from snakemake.utils import validate

from conftest import gps_photos
from imagecoding.llm.parsing import AnswerNotJSON, parse_answer
from imagecoding.llm.task import ANSWERED
from imagecoding.tasks.codebook import CodebookError, codebook_from_mapping, load_codebook
from imagecoding.tasks.frames import frames_for_merge, frames_run
from imagecoding.tasks.prompts import render_prompt
from imagecoding.images import upload_jpeg
from imagecoding.llm.settings import LLMConfigError
from imagecoding.retries import retry_after_seconds
from llm_server import FakeLLM, payload_id

REPO = Path(__file__).resolve().parent.parent
CODEBOOK = REPO / "config" / "codebook.yaml"
PROMPT = REPO / "config" / "prompts" / "frames.j2"
SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"
SECRET = "sk-test-never-written-anywhere"


@pytest.fixture
def fake():
    server = FakeLLM(load_codebook(CODEBOOK).json_schema()).start()
    yield server
    server.stop()


@pytest.fixture
def images(tmp_path):
    """Ten small photos with EXIF (incl. GPS), and their manifest."""
    root = tmp_path / "images"
    paths = gps_photos(root, 10, seed=5, size=(700, 900))
    rows = [{"image_id": f"{index:064x}", "path": path.name, "status": "ok"} for index, path in enumerate(paths)]
    return root, pd.DataFrame(rows)


def make_config(tmp_path, root, fake, **llm):
    config = {
        "images": {"root": str(root)},
        "frames": {"enabled": True, "codebook": str(CODEBOOK), "prompt": str(PROMPT)},
        "llm": {
            "base_url": fake.base_url,
            "model": "test-vision",
            "api_key_env": "TEST_LLM_KEY",
            "prices": {"test-vision": {"input": 2.0, "output": 8.0}},
            "cache": str(tmp_path / "cache" / "llm.sqlite"),
            "backoff_base_s": 0.01,
            "max_concurrency": 4,
            "batch": {"poll_seconds": 0.01},
            **llm,
        },
    }
    validate(config, str(SCHEMA), set_default=True)
    return config


def payload_of(root, name, side=512):
    return payload_id(upload_jpeg(root / name, side))


def run(config, manifest, posts=None):
    frame_run = frames_run(config, manifest, posts)
    return frame_run, frame_run.execute()


# -- codebook, prompt and parsing -----------------------------------------------------------------

def test_the_bundled_codebook_gives_a_strict_schema_and_columns():
    codebook = load_codebook(CODEBOOK)
    schema = codebook.json_schema()
    assert schema["additionalProperties"] is False and set(schema["required"]) == {g.name for g in codebook.groups}
    for group in schema["properties"].values():
        assert group["additionalProperties"] is False and set(group["required"]) == set(group["properties"])
    assert "Setting_Location" in codebook.columns and "Appearance_RolledUpSleeves" in codebook.columns


def test_the_prompt_lists_every_variable_and_forbids_identification():
    codebook = load_codebook(CODEBOOK)
    prompt = render_prompt(PROMPT, codebook=codebook)
    assert "Do not identify any person" in prompt
    for variable in codebook.variables:
        assert f"{variable.group}.{variable.name}" in prompt
        for value in variable.values:
            assert value in prompt


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda a: a["Setting"].update(Space="Underwater"), "Setting_Space: 'Underwater' is not one of"),
        (lambda a: a["Appearance"].update(RolledUpSleeves="true"), "is not true or false"),
        (lambda a: a["People"].update(Count=-1), "below the minimum 0"),
        (lambda a: a["People"].update(Count=2.5), "is not a whole number"),
        (lambda a: a["People"].pop("Gaze"), "People_Gaze: missing"),
        (lambda a: a["Text"].update(Slogan="x" * 121), "longer than 120"),
        (lambda a: a.update(Extra={}), "unexpected group 'Extra'"),
        (lambda a: a.pop("Event"), "group 'Event' is missing"),
    ],
)
def test_answers_outside_the_codebook_are_named_not_coerced(change, problem):
    from llm_server import answer_from_schema

    codebook = load_codebook(CODEBOOK)
    answer = answer_from_schema(codebook.json_schema())
    assert codebook.check_answer(answer)[1] == []
    change(answer)
    codes, problems = codebook.check_answer(answer)
    assert any(problem in p for p in problems), problems


def test_json_is_found_plain_fenced_or_embedded():
    assert parse_answer('{"a": 1}') == {"a": 1}
    assert parse_answer('Sure!\n```json\n{"a": 1}\n```\nDone.') == {"a": 1}
    assert parse_answer('The coding is {"a": {"b": 2}} as asked.') == {"a": {"b": 2}}
    with pytest.raises(AnswerNotJSON):
        parse_answer("A rally with many people.")


def test_codebook_mistakes_are_named(tmp_path):
    with pytest.raises(CodebookError, match="type must be one of"):
        codebook_from_mapping({"groups": {"G": [{"variable": "V", "type": "colour"}]}}, "cb.yaml")
    with pytest.raises(CodebookError, match="at least two values"):
        codebook_from_mapping({"groups": {"G": [{"variable": "V", "type": "categorical", "values": ["A"]}]}}, "cb.yaml")
    with pytest.raises(CodebookError, match="does not exist"):
        codebook_from_mapping(
            {"groups": {"G": [{"variable": "V", "type": "boolean", "examples": {"true": [str(tmp_path / "no.jpg")]}}]}}, "cb.yaml"
        )


def test_retry_after_is_read_in_seconds_and_milliseconds():
    class Response:
        def __init__(self, headers):
            self.headers = headers

    class Error(Exception):
        def __init__(self, headers):
            self.response = Response(headers)

    assert retry_after_seconds(Error({"retry-after": "2"})) == 2
    assert retry_after_seconds(Error({"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(Error({})) is None


# -- against the local server ---------------------------------------------------------------------

def test_faults_are_survived_and_bad_answers_recorded(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    plan = {
        "img0.jpg": ["429", "429"],
        "img1.jpg": ["500"],
        "img2.jpg": ["malformed"],
        "img3.jpg": ["out_of_codebook"],
        "img4.jpg": ["refusal"],
        "img5.jpg": ["fenced"],
        "img6.jpg": ["missing_key"],
        "img7.jpg": ["400"],
        "img8.jpg": ["slow"],
    }
    for name, behaviours in plan.items():
        fake.plan(payload_of(root, name), *behaviours)
    config = make_config(tmp_path, root, fake, timeout_s=0.5)
    frame_run, table = run(config, manifest)
    status = dict(zip(manifest["path"], table.set_index("image_id").loc[manifest["image_id"], "status"]))
    assert status == {
        "img0.jpg": "ok", "img1.jpg": "ok", "img2.jpg": "unparseable", "img3.jpg": "invalid",
        "img4.jpg": "refused", "img5.jpg": "ok", "img6.jpg": "invalid", "img7.jpg": "error",
        "img8.jpg": "ok", "img9.jpg": "ok",
    }
    rows = table.set_index("image_id")
    bad = rows.loc[manifest.loc[3, "image_id"]]
    assert "Spaceship" in bad["error"] and "Spaceship" in bad["raw"]  # the raw answer is kept
    assert pd.isna(bad["Event_Occasion"]) and bad["Setting_Space"] == "Indoors"  # only the bad value is dropped
    assert "BadRequest" in rows.loc[manifest.loc[7, "image_id"], "error"]
    assert not any(entry["problem"] for entry in fake.log)  # every request had the expected shape
    assert len(fake.requests_for(payload_of(root, "img0.jpg"))) == 3
    # answered rows carry their tokens and price; the ledger adds up
    answered = table[table["status"].isin(ANSWERED)]
    expected = (answered["prompt_tokens"] * 2.0 + answered["completion_tokens"] * 8.0) / 1e6
    assert np.allclose(answered["cost_usd"], expected)
    frame_run.write(table, tmp_path / "frames.parquet", tmp_path / "cost.csv")
    assert pd.read_csv(tmp_path / "cost.csv")["cost_usd"].sum() == pytest.approx(table["cost_usd"].sum())


def test_a_second_run_requests_nothing_and_failures_are_retried(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    fake.plan(payload_of(root, "img7.jpg"), "500", "500", "500")
    config = make_config(tmp_path, root, fake, max_retries=2)
    _, first = run(config, manifest)
    assert (first["status"] == "error").sum() == 1
    before = len(fake.log)
    _, second = run(config, manifest)
    assert len(fake.log) - before == 1  # only the failed call is asked again: failures are not cached
    assert (second["status"] == "ok").all()
    assert second["cached"].sum() == 9
    _, third = run(config, manifest)
    assert len(fake.log) - before == 1 and third["cached"].all()


def test_uploads_are_resized_and_carry_no_exif(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    run(make_config(tmp_path, root, fake), manifest)
    for entry in fake.log:
        with Image.open(io.BytesIO(entry["jpeg"])) as upload:
            assert max(upload.size) <= 512
            assert len(upload.getexif()) == 0


def test_the_api_key_is_never_written(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    frame_run, table = run(make_config(tmp_path, root, fake), manifest)
    frame_run.write(table, tmp_path / "frames.parquet", tmp_path / "cost.csv")
    frame_run.engine.cache.close()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_the_budget_stops_new_requests_and_keeps_what_was_paid(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    config = make_config(tmp_path, root, fake, max_cost_usd=0.02, max_tokens=500, max_concurrency=1)
    _, table = run(config, manifest)
    coded = table[table["status"] == "ok"]
    assert 0 < len(coded) < 10
    assert (table["status"] == "skipped_budget").sum() == 10 - len(coded)
    assert table["cost_usd"].sum() <= 0.02
    config["llm"]["max_cost_usd"] = None
    before = len(fake.log)
    _, table = run(config, manifest)
    assert (table["status"] == "ok").all()
    assert len(fake.log) - before == 10 - len(coded)  # what was paid for is not asked again


def test_a_rejected_key_stops_the_run_with_advice(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    fake.plan(payload_of(root, "img0.jpg"), "401")
    with pytest.raises(LLMConfigError, match="rejected the API key from TEST_LLM_KEY"):
        run(make_config(tmp_path, root, fake, max_concurrency=1), manifest)


def test_batch_mode_collects_into_the_same_cache_at_half_price(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    fake.plan(payload_of(root, "img2.jpg"), "malformed")
    config = make_config(tmp_path, root, fake, mode="batch", batch={"poll_seconds": 0.01, "max_lines": 4})
    _, table = run(config, manifest)
    assert len(fake.batches) == 3  # 10 requests, at most 4 per file
    assert (table["status"] == "ok").sum() == 9 and (table["status"] == "unparseable").sum() == 1
    full_price = (table["prompt_tokens"] * 2.0 + table["completion_tokens"] * 8.0) / 1e6
    assert np.allclose(table["cost_usd"], full_price * 0.5)
    config["llm"]["mode"] = "sync"
    before = len(fake.log)
    _, again = run(config, manifest)
    assert len(fake.log) == before and again["cached"].all()


def test_a_restarted_batch_run_polls_instead_of_resubmitting(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    config = make_config(tmp_path, root, fake, mode="batch")
    frame_run = frames_run(config, manifest)
    # a batch submitted by a run that was then killed: recorded in the cache, never collected
    lines = [json.dumps({"custom_id": r.key, "method": "POST", "url": "/v1/chat/completions",
                         "body": frame_run.task.body(r)}) for r in frame_run.requests]
    client = frame_run.engine.client.client
    uploaded = client.files.create(file=("b.jsonl", ("\n".join(lines) + "\n").encode()), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    frame_run.engine.cache.add_batch(batch.id, uploaded.id, [r.key for r in frame_run.requests])
    table = frame_run.execute()
    assert len(fake.batches) == 1 and (table["status"] == "ok").all()


def test_sampling_and_filters_choose_the_images(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    posts = pd.DataFrame({"post_id": range(10), "account": ["a", "b"] * 5, "image": manifest["path"]})
    config = make_config(tmp_path, root, fake)
    config["posts"].update(path="posts.csv", image_column="image", id_column="post_id")
    config["frames"]["filters"] = {"account": "a"}
    frame_run = frames_run(config, manifest, posts)
    assert sorted(r.source.rsplit("/", 1)[1] for r in frame_run.requests) == [f"img{i}.jpg" for i in (0, 2, 4, 6, 8)]
    config["frames"]["filters"] = {}
    config["frames"]["sample"] = 3
    assert len(frames_run(config, manifest, posts).requests) == 3


def test_the_estimate_counts_the_cache(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    config = make_config(tmp_path, root, fake)
    text = frames_run(config, manifest, need_client=False).estimate()
    assert "requests to make       10" in text and "rough" in text
    config["frames"]["sample"] = 4
    run(config, manifest)
    config["frames"]["sample"] = None
    text = frames_run(config, manifest, need_client=False).estimate()
    assert "answers in the cache   4" in text and "requests to make       6" in text
    assert len(fake.log) == 4  # estimating sends nothing


def test_merge_gets_codes_with_prefixed_status(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    _, table = run(make_config(tmp_path, root, fake), manifest)
    merged_columns = frames_for_merge(table).columns
    assert {"frames_status", "frames_error", "frames_cost_usd", "Event_Occasion"} <= set(merged_columns)
    assert "raw" not in merged_columns and "status" not in merged_columns


def test_few_shot_examples_travel_at_low_detail_and_shape_the_cache_key(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    mapping = yaml.safe_load(CODEBOOK.read_text())
    mapping["groups"]["Appearance"][1]["examples"] = {"true": [str(root / "img9.jpg")]}
    codebook_path = tmp_path / "codebook.yaml"
    codebook_path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    config = make_config(tmp_path, root, fake)
    plain_keys = {t.key for t in frames_run(config, manifest, need_client=False).requests}
    config["frames"]["codebook"] = str(codebook_path)
    frame_run, table = run(config, manifest)
    assert not {t.key for t in frame_run.requests} & plain_keys  # examples are part of the request
    body = frame_run.task.body(frame_run.requests[0])
    images_sent = [p for p in body["messages"][0]["content"] if p["type"] == "image_url"]
    assert len(images_sent) == 2 and images_sent[0]["image_url"]["detail"] == "low"
    assert any("RolledUpSleeves = true" in p.get("text", "") for p in body["messages"][0]["content"])
    assert (table["status"] == "ok").all(), table["error"].iloc[0]


def test_endpoints_without_structured_outputs_get_parsed_text(tmp_path, images, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    server = FakeLLM(load_codebook(CODEBOOK).json_schema(), expect_schema=False).start()
    try:
        for name in ("img0.jpg", "img1.jpg"):
            server.plan(payload_of(root, name), "fenced")
        config = make_config(tmp_path, root, server, structured_output="text")
        frame_run, table = run(config, manifest)
        assert "response_format" not in frame_run.task.body(frame_run.requests[0])
        assert (table["status"] == "ok").all()
        config["llm"]["structured_output"] = "json_object"
        frame_run = frames_run(config, manifest)
        assert frame_run.task.body(frame_run.requests[0])["response_format"] == {"type": "json_object"}
    finally:
        server.stop()


def test_the_token_limit_parameter_follows_the_config(tmp_path, images, fake, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    config = make_config(tmp_path, root, fake, token_limit_parameter="max_completion_tokens", max_tokens=300)
    frame_run = frames_run(config, manifest, need_client=False)
    body = frame_run.task.body(frame_run.requests[0])
    assert body["max_completion_tokens"] == 300 and "max_tokens" not in body


def test_an_llm_job_keeps_no_more_requests_in_flight_than_the_run_granted(tmp_path):
    """profiles/slurm's global `llm` budget: a job granted less than llm.max_concurrency uses only that."""
    from types import SimpleNamespace

    from imagecoding.tasks.run import rule_inputs

    manifest = tmp_path / "manifest.parquet"
    pd.DataFrame({"image_id": ["a"], "path": ["a.jpg"], "status": ["ok"]}).to_parquet(manifest)
    from imagecoding.tuning import as_resources

    tuning = as_resources(llm_concurrency=8, llm_retry=[6, 1.0, 60, 120, 60])
    job = lambda granted: SimpleNamespace(  # noqa: E731
        params=SimpleNamespace(settings={"posts": {"path": None}}, llm={"model": "m", "batch": {}}),
        resources=SimpleNamespace(llm=granted, **tuning), input=SimpleNamespace(manifest=str(manifest)))
    assert rule_inputs(job(3))[0]["llm"]["max_concurrency"] == 3
    assert rule_inputs(job(8))[0]["llm"]["max_concurrency"] == 8
    assert rule_inputs(job(0))[0]["llm"]["max_concurrency"] == 8  # a local run with no budget set


def test_copies_reuse_their_groups_answer_and_are_not_asked(tmp_path, images, fake, monkeypatch):
    """duplicates.reuse_answers: ten images in four groups are four requests; every copy gets its group's answer."""
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    root, manifest = images
    config = make_config(tmp_path, root, fake)
    ids = manifest["image_id"].tolist()
    groups = pd.Series([ids[0]] * 4 + [ids[4]] * 3 + [ids[7]] * 2 + [ids[9]], index=ids)
    frame_run = frames_run(config, manifest)
    frame_run.groups = groups
    assert "6 copies of pictures asked once reuse their group's answer" in frame_run.estimate()
    table = frame_run.execute()
    assert len(fake.log) == 4 and len(table) == 10  # the server counted one request per group
    reused = table[table["reused_from"].notna()]
    assert len(reused) == 6 and (reused["cost_usd"] == 0).all()
    assert set(reused["reused_from"]) <= {ids[0], ids[4], ids[7]}
    by_id = table.set_index("image_id")
    variable = [c for c in table.columns if c not in {"image_id", "status", "error", "raw", "request_key", "model",
                                                      "prompt_tokens", "completion_tokens", "cost_usd", "cached",
                                                      "reused_from"}][0]
    assert by_id.loc[ids[3], variable] == by_id.loc[ids[0], variable]
    assert "frames_reused_from" in frames_for_merge(table).columns
    frame_run.write(table, tmp_path / "frames.parquet", tmp_path / "ledger.csv")
    assert len(pd.read_csv(tmp_path / "ledger.csv")) == 4  # the ledger lists what was asked for, not the copies
