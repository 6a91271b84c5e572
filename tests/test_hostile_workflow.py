"""The whole DAG on a hostile corpus with every step on, against test servers that inject faults.

Every file and every failed signal ends as a row with its reason, no step crashes, no paid answer is
lost or paid twice, a second run asks nothing and recomputes nothing, and no injected markup runs in
Chromium.
"""

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from imagecoding.schemes import load_scheme
from imagecoding.tasks.codebook import load_codebook
from imagecoding.tasks.ensemble import scheme_codebook
from llm_server import INJECTED_ANSWER, FakeLLM
from vision_server import FakeVision
from workflow_helpers import REPO, ensemble_settings, planned_jobs, prepare_workdir, snakemake, write_config

pytestmark = pytest.mark.workflow

LLM_FAULTS = ("429", "500", "malformed", "refusal", "out_of_codebook", "inject", "missing_key", "500", "429", "fenced")
BILLED = {"ok", "malformed", "refusal", "out_of_codebook", "inject", "missing_key", "fenced"}  # 200s: the provider bills them
HOSTILE_NAME = "<img src=x onerror=\"document.title='pwned-by-name'\">.jpg"
HOSTILE_CAPTION = "<script>document.title='pwned-by-caption'</script>"


@pytest.fixture(scope="module")
def servers():
    os.environ["HOSTILE_LLM_KEY"], os.environ["HOSTILE_VISION_KEY"] = "sk-hostile", "vision-hostile"
    schemes = scheme_codebook([load_scheme("image_type", REPO / "config" / "schemes" / "image_types.yaml")], 200)
    llm = FakeLLM(schemes.json_schema(), load_codebook(REPO / "config" / "codebook.yaml").json_schema(),
                  text_only=("ensemble",), varied=True).start()
    llm.plan_text("", *LLM_FAULTS)  # the first requests of any task, whichever comes first
    vision = FakeVision("vision-hostile").start()
    vision.script = ["429", "image_error", "500", "500", "500", "500", "500", "500"]
    yield llm, vision
    llm.stop()
    vision.stop()


def hostile_corpus(workdir: Path) -> None:
    """The example (truncated, empty, huge, not-an-image, missing, animated, CMYK, 16-bit, alpha) plus paths that lead out."""
    outside = workdir / "outside"
    outside.mkdir()
    shutil.copy(workdir / "images" / "red_list" / "cat.jpg", outside / "secret.jpg")
    (workdir / "images" / "red_list" / "link_out.jpg").symlink_to(outside / "secret.jpg")
    shutil.copy(workdir / "images" / "blue_party" / "coffee.jpg", workdir / "images" / "blue_party" / HOSTILE_NAME)
    posts = pd.read_csv(workdir / "posts.csv", keep_default_na=False)
    extra = pd.DataFrame({"post_id": ["h1", "h2", "h3", "h4"], "account": "troll", "date": "2025-09-09",
                          "caption": [HOSTILE_CAPTION, "", "", ""],
                          "image": [f"blue_party/{HOSTILE_NAME}", "../outside/secret.jpg", "/etc/hostname", "red_list/link_out.jpg"]})
    pd.concat([posts, extra]).to_csv(workdir / "posts.csv", index=False)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, tiny_checkpoint, tiny_coca_checkpoint, servers):
    llm, vision = servers
    workdir = prepare_workdir(tmp_path_factory.mktemp("hostile"))
    hostile_corpus(workdir)
    settings = ensemble_settings(llm, tiny_coca_checkpoint)
    settings["llm"]["api_key_env"] = "HOSTILE_LLM_KEY"
    settings["ensemble"]["signals"] = ["ocr", "objects", "tags", "captions", "vision"]
    settings["signals"]["vision"] = {"endpoint": vision.endpoint, "api_key_env": "HOSTILE_VISION_KEY"}
    settings["validation"] = {"sample_size": 10, "min_per_category": 1, "bootstrap": 20}
    write_config(workdir, tiny_checkpoint, extra=settings)
    snakemake(workdir)
    return workdir


def test_every_file_and_every_path_is_a_row_with_its_reason(hostile_run):
    manifest = pd.read_parquet(hostile_run / "results" / "manifest.parquet")
    status = manifest.drop_duplicates("path").set_index("path")["status"]
    escaped = [path for path in status.index if path.endswith("outside/secret.jpg")]  # '../' is resolved, then refused
    assert len(escaped) == 1 and status[escaped[0]] == "outside_root" and status["/etc/hostname"] == "outside_root"
    assert status["red_list/link_out.jpg"] == "outside_root" and status[f"blue_party/{HOSTILE_NAME}"] == "ok"
    assert {"truncated", "empty", "too_large", "not_an_image", "missing"} <= set(status)
    assert manifest.loc[manifest["status"] != "ok", "error"].notna().all()
    merged = pd.read_parquet(hostile_run / "results" / "merged.parquet")
    assert {"h1", "h2", "h3", "h4"} <= set(merged["post_id"])  # posts whose image failed keep their row


def test_every_step_has_a_row_per_image_and_failures_say_why(hostile_run):
    manifest = pd.read_parquet(hostile_run / "results" / "manifest.parquet")
    decodable = set(manifest.loc[manifest["status"] == "ok", "image_id"])
    tables = {signal: f"signals/{signal}.parquet" for signal in ("ocr", "objects", "tags", "captions", "vision")}
    tables |= {"frames": "llm/frames.parquet", "ensemble": "ensemble/categories.parquet"}
    failures = 0
    for name, path in tables.items():
        table = pd.read_parquet(hostile_run / "results" / path)
        assert set(table["image_id"]) == decodable and table["image_id"].is_unique, name
        failed = table[table["status"] != "ok"]
        assert failed["error"].notna().all() and (failed["error"].str.len() > 0).all(), name
        failures += len(failed)
    vision = pd.read_parquet(hostile_run / "results" / "signals" / "vision.parquet")
    assert (vision["status"] == "vision_error").any()  # the image Cloud Vision rejected, and the requests past retries
    frames = pd.read_parquet(hostile_run / "results" / "llm" / "frames.parquet")
    ensemble = pd.read_parquet(hostile_run / "results" / "ensemble" / "categories.parquet")
    answered = set(frames["status"]) | set(ensemble["status"])
    assert {"unparseable", "refused", "invalid"} <= answered and failures >= 4


def test_no_paid_answer_is_lost_and_none_is_paid_twice(hostile_run, servers):
    llm, _ = servers
    billed = [entry for entry in llm.log if entry["behaviour"] in BILLED and not entry["problem"]]
    keys = [(entry["schema"], entry["image"] if entry["image"] else entry["text"]) for entry in billed]
    assert len(keys) == len(set(keys))  # paid twice: 0
    ledger = pd.read_csv(hostile_run / "results" / "llm" / "cost.csv")
    assert len(ledger) == len(billed) and not ledger["cached"].any()  # lost: 0, every paid answer is in the ledger


def test_a_second_run_asks_nothing_and_recomputes_nothing(hostile_run, servers):
    llm, vision = servers
    asked, sent = len(llm.log), len(vision.log)
    assert planned_jobs(hostile_run) == {}
    result = snakemake(hostile_run)
    assert "Nothing to be done" in result.stdout + result.stderr
    assert len(llm.log) == asked and len(vision.log) == sent


@pytest.mark.browser
def test_injected_markup_runs_in_no_page(hostile_run, browser):
    report = hostile_run / "results" / "report"
    for page_name in ("index.html", "check.html"):
        html = (report / page_name).read_text()
        assert HOSTILE_CAPTION not in html and INJECTED_ANSWER not in html and HOSTILE_NAME not in html
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto((report / page_name).as_uri())
        page.evaluate("document.querySelectorAll('img').forEach(img => img.loading = 'eager')")
        page.wait_for_timeout(300)
        assert "pwned" not in page.title() and not dialogs, page_name
        page.close()
    assert "&lt;script&gt;document.title=" in (report / "index.html").read_text()  # shown as text, escaped
