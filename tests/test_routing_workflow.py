"""End to end: routing spends the multimodal LLM only where the learned classifier is unsure, at a certified accuracy.

The corpus has four visual classes the tiny model embeds apart, and collages of two classes (55% of the width
one, 45% the other) that it does not: the learned classifier is sure and right on the clear images, unsure
and often wrong on the collages. The local test server plays an accurate but costly multimodal LLM: it
decides from the pixels of the image it is sent (each column's nearest class by mean colour, then the
majority of columns), so on the collages it is right where the cheap method is not.
"""

import io
import json
import os

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from imagecoding.images import upload_jpeg
from imagecoding.schemes import load_scheme
from imagecoding.tasks.ensemble import scheme_codebook
from llm_server import FakeLLM
from test_learned_workflow import CLASSES, class_images, pattern_study
from workflow_helpers import planned_jobs, snakemake

pytestmark = pytest.mark.workflow

PER_CLASS = 120
COLLAGES = 120
CODED = 120  # the validation sample: a fifth of the corpus
BUDGET = 0.15  # US dollars: enough for routing's requests, not for the LLM on every image
NAMES = list(CLASSES)


def collage_images(root, truth: dict[str, str], seed: int = 1) -> None:
    """COLLAGES images, each the left 55% of a clear image beside the right 45% of another class's; the larger part
    is the true class. The dots are never the smaller part: the tiny model's embedding takes their texture for the
    whole image however little of it there is, so the cheap method would be sure and wrong, which no threshold mends."""
    rng = np.random.default_rng(seed)
    by_class = {name: [f for f, c in truth.items() if c == name] for name in NAMES}
    for k in range(COLLAGES):
        first = rng.integers(len(NAMES))
        second = rng.choice([n for n in range(len(NAMES)) if n != first and NAMES[n] != "Green dots"])
        a = np.asarray(Image.open(root / rng.choice(by_class[NAMES[first]])))
        b = np.asarray(Image.open(root / rng.choice(by_class[NAMES[second]])))
        split = round(0.55 * a.shape[1])
        name = f"collage_{k}.png"
        Image.fromarray(np.concatenate([a[:, :split], b[:, split:]], axis=1)).save(root / name)
        truth[name] = NAMES[first]


def column_colours(jpeg: bytes) -> np.ndarray:
    """The mean colour of every column of pixels."""
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=float).mean(axis=0)


class PixelClassifier:
    """The test server's multimodal LLM: per column of pixels the class whose clear images' mean colour is nearest,
    and the class of most columns."""

    def __init__(self, root, truth: dict[str, str]):
        sums = {name: [] for name in NAMES}
        for file, name in truth.items():
            if not file.startswith("collage"):
                sums[name].append(column_colours(upload_jpeg(root / file, 512)).mean(axis=0))
        self.names = list(sums)
        self.centroids = np.stack([np.mean(sums[name], axis=0) for name in self.names])

    def category(self, jpeg: bytes) -> str:
        columns = column_colours(jpeg)
        nearest = np.linalg.norm(columns[:, None, :] - self.centroids[None], axis=2).argmin(axis=1)
        return self.names[np.bincount(nearest, minlength=len(self.names)).argmax()]

    def __call__(self, jpeg: bytes, answer: dict) -> dict:
        return {"pattern": {"category": self.category(jpeg), "reason": "the colours and texture"}}


def by_name(workdir) -> pd.Series:
    manifest = pd.read_parquet(workdir / "results" / "manifest.parquet")
    return manifest.assign(name=manifest["path"].map(lambda p: p.split("/")[-1])).set_index("name")["image_id"]


def study_config(workdir, checkpoint, fake) -> dict:
    """The four-class scheme, routing on, and a test server that answers its schema."""
    clip = pattern_study(workdir, checkpoint)
    fake.schemas.append(scheme_codebook([load_scheme("pattern", workdir / "schemes" / "pattern.yaml")], 200).json_schema())
    return {
        "images": {"root": "images"},
        "clip": clip,
        "report": {"samples_per_category": 1, "lowest_confidence": 1},
        "validation": {"sample_size": CODED, "min_per_category": 1, "bootstrap": 50},
        "learned": {"curve_sizes": [20], "curve_repeats": 2},
        "route": {"enabled": True, "target_accuracy": 0.97, "delta": 0.1},
        "duplicates": {"enabled": False},  # the classes are near-duplicates by design (test_learned_workflow.py)
        "llm": {"base_url": fake.base_url, "model": "test-model", "api_key_env": "E2E_ROUTING_KEY",
                "prices": {"test-model": {"input": 1.0, "output": 4.0}}, "backoff_base_s": 0.01, "max_tokens": 100,
                "max_concurrency": 2, "max_cost_usd": BUDGET},
    }


@pytest.fixture(scope="module")
def routed_study(tmp_path_factory, tiny_checkpoint):
    os.environ["E2E_ROUTING_KEY"] = "sk-routing-e2e"
    workdir = tmp_path_factory.mktemp("routing")
    truth = class_images(workdir / "images", per_class=PER_CLASS)
    collage_images(workdir / "images", truth)
    llm = PixelClassifier(workdir / "images", truth)
    fake = FakeLLM(decide=llm).start()
    config = study_config(workdir, tiny_checkpoint, fake)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # The sample's design needs only zero-shot: draw it, code it, then run everything.
    snakemake(workdir, "--until", "validation_design")
    design = pd.read_parquet(workdir / "results" / "validation" / "design.parquet")
    drawn = set(design.loc[design["round"] > 0, "image_id"])
    ids = by_name(workdir)
    codes = [(ids[name], "ann", "pattern", value) for name, value in truth.items() if ids[name] in drawn]
    pd.DataFrame(codes, columns=["image_id", "coder", "variable", "value"]).to_csv(workdir / "gold.csv", index=False)
    config["validation"]["annotations"] = "gold.csv"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir)
    yield workdir, truth, llm, fake
    fake.stop()


def routed(workdir) -> pd.DataFrame:
    return pd.read_parquet(workdir / "results" / "routing" / "pattern.parquet")


def test_routing_sends_at_most_half_and_keeps_the_accuracy_of_the_llm_on_every_image(routed_study):
    workdir, truth, llm, fake = routed_study
    summary = json.loads((workdir / "results" / "routing" / "summary.json").read_text())
    pattern = summary["schemes"]["pattern"]
    assert pattern["certified"] and pattern["cheap"] == "learned" and 0 < pattern["threshold"] < 1
    images = len(truth)
    asked = [entry for entry in fake.log if entry["schema"] == "multimodal"]
    assert len(asked) <= images / 2, (len(asked), images)
    assert summary["coded_asked"] == CODED and len(asked) == summary["coded_asked"] + summary["unsure_asked"]

    # Accuracy over every image against the truth: routed, and the LLM as it would answer each one.
    ids = by_name(workdir)
    truth_by_id = pd.Series({ids[name]: value for name, value in truth.items()})
    table = routed(workdir).set_index("image_id")
    routed_accuracy = float((table["routed"] == truth_by_id.reindex(table.index)).mean())
    everywhere = np.mean([llm.category(upload_jpeg(workdir / "images" / name, 512)) == value for name, value in truth.items()])
    print(f"routed {routed_accuracy:.3f} with {len(asked)} of {images} sent; LLM everywhere {everywhere:.3f}")
    assert everywhere >= 0.95
    assert routed_accuracy >= everywhere - 0.02
    # the collages are where the LLM decided
    collages = [ids[name] for name in truth if name.startswith("collage")]
    assert (table.loc[collages, "by"] == "multimodal").mean() >= 0.8
    assert set(table["by"]) == {"learned", "multimodal"}


def test_the_curve_grows_with_the_requests_sent_and_prices_the_whole_corpus(routed_study):
    workdir, truth, _, _ = routed_study
    curve = pd.read_csv(workdir / "results" / "routing" / "pattern_curve.csv")
    assert len(curve) == 101 and curve["threshold"].is_monotonic_increasing and curve["chosen"].sum() == 1
    assert curve["requests"].is_monotonic_increasing and curve.iloc[-1]["images_sent"] == len(truth)
    assert curve.iloc[-1]["accuracy"] > curve.iloc[0]["accuracy"] + 0.02
    assert curve[["requests", "accuracy"]].corr(method="spearman").iloc[0, 1] > 0.5
    chosen = curve[curve["chosen"]].iloc[0]
    assert chosen["accuracy_bound"] >= 0.97 and chosen["ci_low"] <= chosen["accuracy"] <= chosen["ci_high"]
    # dollars: requests at the ledger's measured cost per answer; the LLM on every image would pass the budget
    ledger = pd.read_csv(workdir / "results" / "llm" / "cost.csv")
    per_answer = ledger.loc[ledger["task"] == "multimodal", "cost_usd"].mean()
    assert chosen["dollars"] == pytest.approx(chosen["requests"] * per_answer)
    assert curve.iloc[-1]["dollars"] > BUDGET


def test_routing_keeps_within_the_budget_and_pays_nothing_on_a_rerun(routed_study):
    workdir, _, _, fake = routed_study
    table = pd.read_parquet(workdir / "results" / "llm" / "multimodal.parquet")
    assert table["cost_usd"].sum() <= BUDGET and not (table["status"] == "skipped_budget").any()
    assert planned_jobs(workdir) == {}
    before, decided = len(fake.log), routed(workdir)
    snakemake(workdir, "--forcerun", "multimodal_classify")
    assert len(fake.log) == before
    again = pd.read_parquet(workdir / "results" / "llm" / "multimodal.parquet")
    assert again["cached"].all() and len(again) == len(table)
    pd.testing.assert_frame_equal(routed(workdir), decided)  # the same codes, from the cache


def test_routed_and_multimodal_codes_are_methods_everywhere(routed_study):
    workdir, _, _, _ = routed_study
    merged = pd.read_parquet(workdir / "results" / "merged.parquet")
    assert {"routed_pattern", "routed_pattern_by", "routed_pattern_sent", "multimodal_pattern",
            "multimodal_pattern_reason", "multimodal_status"} <= set(merged.columns)
    assert merged["routed_pattern"].notna().all()
    metrics = pd.read_csv(workdir / "results" / "validation" / "metrics.csv")
    gold = metrics[(metrics["against"] == "gold") & (metrics["metric"] == "accuracy") & metrics["class"].isna()]
    accuracy = gold.set_index("method")["value"]
    assert {"clip", "learned", "multimodal", "routed", "consensus"} <= set(accuracy.index)
    assert accuracy["routed"] >= 0.97 and accuracy["multimodal"] >= 0.95
    consensus = pd.read_parquet(workdir / "results" / "consensus" / "pattern.parquet")
    assert "multimodal" in consensus.columns
    prevalence = pd.read_csv(workdir / "results" / "estimates" / "prevalence.csv")
    assert "routed" in set(prevalence["method"]) and "multimodal" not in set(prevalence["method"])
    summary = json.loads((workdir / "results" / "estimates" / "summary.json").read_text())
    assert summary["report_method"] == {"pattern": "routed"}
    html = (workdir / "results" / "report" / "index.html").read_text()
    assert 'id="routing"' in html and '<svg role="img" aria-label="routing curve of pattern"' in html
    assert "Certified: with probability at least 90%" in html and 'id="multimodal"' in html
    tasks = json.loads((workdir / "results" / "validation" / "label_studio" / "tasks.json").read_text())
    assert any(p.get("model_version") == "routed" for task in tasks for p in task.get("predictions", []))


def test_llm_estimate_shows_requests_and_dollars_with_and_without_routing_and_sends_nothing(routed_study):
    workdir, truth, _, fake = routed_study
    before = len(fake.log)
    out = snakemake(workdir, "llm_estimate", "--forcerun", "llm_estimate").stdout
    assert len(fake.log) == before
    assert "multimodal on every image" in out and "multimodal with routing" in out
    assert f"images selected        {len(truth)}" in out
    assert f"of which coded images    {CODED}" in out and "(certified)" in out


@pytest.mark.browser
def test_the_routing_curve_is_a_drawn_chart_in_chromium(routed_study, browser):
    workdir, _, _, _ = routed_study
    page = browser.new_page()
    page.goto((workdir / "results" / "report" / "index.html").as_uri())
    chart = page.locator("#routing-curve-pattern svg")
    box = chart.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 150
    assert page.locator("#routing-curve-pattern svg g.mark-line path, #routing-curve-pattern svg path.mark-line").count() >= 1
    assert page.locator("#routing-curve-pattern svg g.mark-symbol path").count() >= 1  # the chosen point
    text = chart.evaluate("svg => svg.textContent")
    assert "share of images sent to the LLM" in text and "chosen: threshold" in text and "cheap method only" in text


def test_before_any_codes_the_fixed_threshold_applies_and_the_report_says_it_is_not_certified(tmp_path, tiny_checkpoint):
    os.environ["E2E_ROUTING_KEY"] = "sk-routing-e2e"
    truth = class_images(tmp_path / "images", per_class=6)
    fake = FakeLLM(decide=PixelClassifier(tmp_path / "images", truth)).start()
    try:
        config = study_config(tmp_path, tiny_checkpoint, fake)
        config["validation"]["sample_size"] = 8
        config["llm"]["max_cost_usd"] = 0.004  # a few answers only
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        snakemake(tmp_path)
        summary = json.loads((tmp_path / "results" / "routing" / "summary.json").read_text())["schemes"]["pattern"]
        assert summary["threshold"] == 0.8 and not summary["certified"] and summary["cheap"] == "clip"
        table = pd.read_parquet(tmp_path / "results" / "llm" / "multimodal.parquet")
        assert table["cost_usd"].sum() <= 0.004 and (table["status"] == "skipped_budget").any()
        decided = routed(tmp_path)
        skipped = set(table.loc[table["status"] == "skipped_budget", "image_id"])
        assert (decided.set_index("image_id").loc[list(skipped), "by"] == "clip").all()  # the cheap code stands
        html = (tmp_path / "results" / "report" / "index.html").read_text()
        assert "Accuracy not certified." in html and "no human codes yet" in html
    finally:
        fake.stop()
