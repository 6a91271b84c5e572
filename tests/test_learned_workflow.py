"""End to end: human codes on a corpus zero-shot CLIP cannot read become a learned classifier that can.

Four visual classes (a colour and a texture each) that the tiny random-weight model embeds apart, while
its random text tower points nowhere: zero-shot is near chance, a linear probe on the embeddings is not.
"""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from workflow_helpers import planned_jobs, snakemake
from tiny_clip import MODEL_CONFIG, MODEL_NAME

pytestmark = pytest.mark.workflow

CLASSES = {"Red stripes": (200, 40, 40), "Green dots": (40, 170, 60), "Blue plain": (40, 60, 200), "Grey noise": (128, 128, 128)}
PER_CLASS = 14
FIRST = 10  # codes per class in the first round; the rest are added later


def class_images(root, seed: int = 0, per_class: int = PER_CLASS) -> dict[str, str]:
    """`per_class` images of every class, each with its own noise; returns file name -> class."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    truth = {}
    grid = np.indices((48, 48))
    for number, (name, colour) in enumerate(CLASSES.items()):
        for k in range(per_class):
            pixels = np.ones((48, 48, 3)) * colour
            if number == 0:
                pixels[(grid[0] // 6) % 2 == 0] *= 0.3
            elif number == 1:
                pixels[((grid[0] % 8) < 3) & ((grid[1] % 8) < 3)] = 255
            elif number == 3:
                pixels = rng.integers(0, 255, (48, 48, 3))
            pixels = np.clip(pixels + rng.normal(0, 12, pixels.shape), 0, 255).astype(np.uint8)
            path = root / f"{number}_{k}.png"
            Image.fromarray(pixels).save(path)
            truth[path.name] = name
    return truth


def pattern_study(workdir, checkpoint) -> dict:
    """The scheme of the four classes, written into the study folder; returns the clip block that scores it."""
    (workdir / "schemes").mkdir()
    (workdir / "schemes" / "pattern.yaml").write_text(yaml.safe_dump({
        "Red stripes": ["red and dark horizontal stripes"], "Green dots": ["white dots on a green ground"],
        "Blue plain": ["a plain blue surface"], "Grey noise": ["colourful random noise"],
    }))
    return {"model": MODEL_NAME, "model_config": str(MODEL_CONFIG), "pretrained": str(checkpoint),
            "schemes": {"pattern": "schemes/pattern.yaml"}, "workers": 1, "batch_size": 16}


def write_codes(workdir, truth: dict[str, str], per_class: int) -> None:
    manifest = pd.read_parquet(workdir / "results" / "manifest.parquet")
    ids = manifest.assign(name=manifest["path"].map(lambda p: p.split("/")[-1])).set_index("name")["image_id"]
    rows = [(ids[name], "ann", "pattern", value) for name, value in truth.items() if int(name.split("_")[1][:-4]) < per_class]
    rows.append((ids["0_0.png"], "bob", "pattern", "Checkerboard"))  # a category the scheme no longer has: not a tie
    pd.DataFrame(rows, columns=["image_id", "coder", "variable", "value"]).to_csv(workdir / "gold.csv", index=False)


@pytest.fixture(scope="module")
def learned_run(tmp_path_factory, tiny_checkpoint):
    workdir = tmp_path_factory.mktemp("learned")
    truth = class_images(workdir / "images")
    clip = pattern_study(workdir, tiny_checkpoint)
    config = {
        "images": {"root": "images"},
        "clip": clip,
        "report": {"samples_per_category": 2, "lowest_confidence": 1},
        "validation": {"sample_size": 12, "min_per_category": 1, "bootstrap": 100},
        "learned": {"curve_sizes": [8, 20], "curve_repeats": 3},
        # Each class is one pattern with fresh noise: near-duplicates by design, which grouped folds would keep
        # whole, one class to a fold. This study measures the learner, not the groups (tests/test_duplicates.py).
        "duplicates": {"enabled": False},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir, "--until", "manifest")
    write_codes(workdir, truth, FIRST)
    config["validation"]["annotations"] = "gold.csv"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir)
    return workdir, truth


def test_learned_beats_zero_shot_on_the_same_codes_out_of_fold(learned_run):
    workdir, _ = learned_run
    metrics = pd.read_csv(workdir / "results" / "validation" / "metrics.csv")
    overall = metrics[(metrics["against"] == "gold") & metrics["class"].isna() & (metrics["variable"] == "pattern")]
    accuracy = overall[overall["metric"] == "accuracy"].set_index("method")
    assert accuracy.loc["learned", "n"] == accuracy.loc["clip", "n"] == 4 * FIRST
    assert accuracy.loc["learned", "value"] >= 0.85
    assert accuracy.loc["learned", "value"] > accuracy.loc["clip", "value"] + 0.3
    assert accuracy.loc["learned", "ci_low"] <= accuracy.loc["learned", "value"] <= accuracy.loc["learned", "ci_high"]
    assert {"macro_f1", "kappa"} <= set(overall[overall["method"] == "learned"]["metric"])


def test_every_embedded_image_gets_a_learned_code_and_coded_ones_an_out_of_fold_one(learned_run):
    workdir, truth = learned_run
    table = pd.read_parquet(workdir / "results" / "learned" / "pattern.parquet")
    assert len(table) == len(truth) and table["image_id"].is_unique
    assert (table["status"] == "out_of_fold").sum() == 4 * FIRST and set(table["status"]) == {"ok", "out_of_fold"}
    assert {"pattern", "pattern_prob", "pattern_1", "pattern_prob_1", "pattern_2"} <= set(table.columns)
    card = json.loads((workdir / "results" / "learned" / "pattern.json").read_text())
    assert card["status"] == "learned" and card["n_codes"] == 4 * FIRST
    assert card["n_per_class"] == {name: FIRST for name in CLASSES}
    assert card["outside_categories"] == {"Checkerboard": 1} and card["C"] in card["C_grid"]
    assert card["embedding"]["store_key"] and len(card["codes_sha256"]) == 64
    model = json.loads((workdir / "results" / "learned" / "pattern_model.json").read_text())
    assert sorted(model["classes"]) == sorted(CLASSES) and len(model["coef"]) == len(CLASSES)
    curve = pd.read_csv(workdir / "results" / "learned" / "pattern_curve.csv")
    assert set(curve["n_codes"]) == {8, 20, 4 * FIRST} and (curve["n_codes"] == 8).sum() == 3

    merged = pd.read_parquet(workdir / "results" / "merged.parquet")
    assert {"learned_pattern", "learned_pattern_prob", "learned_pattern_out_of_fold"} <= set(merged.columns)
    named = merged.assign(name=merged["path"].map(lambda p: p.split("/")[-1])).set_index("name")
    uncoded = [name for name in truth if int(name.split("_")[1][:-4]) >= FIRST]
    right = sum(named.loc[name, "learned_pattern"] == truth[name] for name in uncoded)
    assert right >= 0.8 * len(uncoded)  # the final model, on images nobody coded
    consensus = pd.read_parquet(workdir / "results" / "consensus" / "pattern.parquet")
    assert "learned" in consensus.columns
    tasks = json.loads((workdir / "results" / "validation" / "label_studio" / "tasks.json").read_text())
    assert any(p.get("model_version") == "learned" for task in tasks for p in task.get("predictions", []))


def test_the_report_shows_the_learning_curve_and_the_codes_not_used(learned_run):
    workdir, _ = learned_run
    html = (workdir / "results" / "report" / "index.html").read_text()
    assert 'id="learned"' in html and '<svg role="img" aria-label="learning curve of pattern"' in html
    assert "The learned classifier pattern agrees with the human gold standard" in html
    assert "Checkerboard ×1" in html and "learned pattern" in html  # codes not used; a line on the sample cards
    provenance = json.loads((workdir / "results" / "report" / "provenance.json").read_text())
    assert provenance["steps"]["learned_fit"]["settings"]["settings"]["learned"]["min_per_class"] == 5
    # Each step names its env file and what its jobs ran with: here one venv made from the same lock.
    for step in ("clip_embed", "learned_fit", "report"):
        environment = provenance["steps"][step]["environment"]
        assert environment["jobs_recorded"] and environment["differs"] == {}, (step, environment)
    assert provenance["steps"]["clip_embed"]["environment"]["env"]["path"] == "envs/torch.yaml"
    assert "exactly as pinned" in html


def test_unchanged_codes_run_nothing_and_added_codes_refit_only_the_learner_and_what_reads_it(learned_run):
    workdir, truth = learned_run
    assert planned_jobs(workdir) == {}
    write_codes(workdir, truth, PER_CLASS)
    planned = set(planned_jobs(workdir))
    assert "learned_fit" in planned and "validation_metrics" in planned
    assert not planned & {"manifest", "clip_weights", "clip_embed", "clip_score"}
    snakemake(workdir)
    card = json.loads((workdir / "results" / "learned" / "pattern.json").read_text())
    assert card["n_codes"] == 4 * PER_CLASS
    table = pd.read_parquet(workdir / "results" / "learned" / "pattern.parquet")
    assert (table["status"] == "out_of_fold").all()


@pytest.mark.browser
def test_the_learning_curve_is_a_drawn_chart_in_chromium(learned_run, browser):
    workdir, _ = learned_run
    page = browser.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto((workdir / "results" / "report" / "index.html").as_uri())
    chart = page.locator("#curve-pattern svg")
    box = chart.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 150
    # Both panels draw the learned line with its band, and zero-shot CLIP as a labelled reference rule.
    assert page.locator("#curve-pattern svg path.mark-line, #curve-pattern svg g.mark-line path").count() >= 2
    assert page.locator("#curve-pattern svg g.mark-area path").count() >= 2
    legend = chart.evaluate("svg => svg.textContent")
    assert "zero-shot CLIP" in legend and "Accuracy" in legend and "Macro-F1" in legend
    assert all(url.startswith("file://") for url in requested)
