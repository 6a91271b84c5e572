"""End to end: codes on the workflow's own uncertainty sample correct the shares per account and per period,
the report charts them, R's dsl gets its table, and a second round draws only new images."""

import json

import pandas as pd
import pytest
import yaml

from test_learned_workflow import class_images, pattern_study
from workflow_helpers import planned_jobs, snakemake

pytestmark = pytest.mark.workflow


def code_the_sample(workdir, truth: dict[str, str], sample: str = "sample.csv", out: str = "codes.csv") -> int:
    """Code what the workflow drew, as a coder would: the true class of every image on its sheet."""
    sheet = pd.read_csv(workdir / "results" / "validation" / sample)
    rows = [(image_id, "ann", "pattern", truth[path.split("/")[-1]]) for image_id, path in zip(sheet["image_id"], sheet["path"])]
    pd.DataFrame(rows, columns=["image_id", "coder", "variable", "value"]).to_csv(workdir / out, index=False)
    return len(rows)


@pytest.fixture(scope="module")
def estimated(tmp_path_factory, tiny_checkpoint):
    workdir = tmp_path_factory.mktemp("estimates")
    truth = class_images(workdir / "images")
    names = sorted(truth)
    posts = pd.DataFrame({"post_id": [f"p{n}" for n in range(len(names))], "image": names,
                          "account": ["party_a" if n % 2 else "party_b" for n in range(len(names))],
                          "date": ["2025-09-10" if n % 3 else "2025-10-02" for n in range(len(names))]})
    posts.loc[5, "date"] = "sometime in autumn"
    posts.to_csv(workdir / "posts.csv", index=False)
    clip = pattern_study(workdir, tiny_checkpoint)
    config = {
        "images": {"root": "images"},
        "posts": {"path": "posts.csv", "image_column": "image", "id_column": "post_id", "account_column": "account",
                  "date_column": "date"},
        "clip": clip,
        "report": {"samples_per_category": 1, "lowest_confidence": 1},
        "validation": {"design": "uncertainty", "sample_size": 30, "bootstrap": 50},
        "learned": {"curve_sizes": [8], "curve_repeats": 2, "min_per_class": 3, "folds": 3},
        "estimates": {"min_coded": 8, "level": 0.9},
        "duplicates": {"enabled": False},  # the classes are near-duplicates by design (test_learned_workflow.py)
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir)
    first = code_the_sample(workdir, truth)
    config["validation"]["annotations"] = "codes.csv"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir)
    return workdir, truth, config, first


def test_codes_on_the_sample_correct_the_machines_shares_per_account_and_period(estimated):
    workdir, truth, _, first = estimated
    table = pd.read_csv(workdir / "results" / "estimates" / "prevalence.csv")
    assert list(table.columns)[:15] == ["variable", "method", "group_by", "group", "category", "n_images", "n_coded",
                                        "naive", "human", "human_low", "human_high", "ppi", "ppi_low", "ppi_high", "level"]
    assert set(table["method"]) == {"clip", "learned", "consensus"} and (table["level"] == 0.9).all()
    assert set(table["group_by"]) == {"overall", "account", "period"}
    assert set(table.loc[table["group_by"] == "period", "group"]) == {"2025-09", "2025-10"}
    overall = table[(table["group_by"] == "overall") & (table["method"] == "clip")].set_index("category")
    assert (overall["n_images"] == len(truth)).all() and (overall["n_coded"] == first).all()
    assert overall["valid"].all() and overall["ppi"].notna().all()
    assert overall["naive"].sum() == pytest.approx(1) and overall["ppi"].sum() == pytest.approx(1, abs=0.05)
    # Zero-shot reads nothing of these classes (its shares are far off); the codes pull the corrected shares to the truth.
    true_share = pd.Series(truth).value_counts(normalize=True)
    naive_error = (overall["naive"] - true_share).abs().mean()
    ppi_error = (overall["ppi"] - true_share).abs().mean()
    assert ppi_error < naive_error / 2, (naive_error, ppi_error)
    assert ((overall["ppi_low"] <= overall["ppi"]) & (overall["ppi"] <= overall["ppi_high"])).all()

    summary = json.loads((workdir / "results" / "estimates" / "summary.json").read_text())
    assert summary["probability_sample"] and summary["unparseable_dates"] == 1
    assert summary["unparseable_examples"] == ["sometime in autumn"] and summary["report_method"] == {"pattern": "learned"}
    assert "sometime in autumn" in (workdir / "logs" / "estimates.log").read_text()

    dsl = pd.read_csv(workdir / "results" / "estimates" / "dsl_input.csv")
    assert len(dsl) == len(truth) and dsl["image_id"].is_unique and dsl["labeled"].sum() == first
    assert {"clip_pattern", "learned_pattern", "gold_pattern", "sample_prob", "account", "period"} <= set(dsl.columns)
    assert (dsl["sample_prob"] > 0).all() and dsl.loc[dsl["labeled"] == 0, "gold_pattern"].isna().all()
    metrics = pd.read_csv(workdir / "results" / "validation" / "metrics.csv")
    assert metrics.loc[metrics["against"] == "gold", "weighted"].all()


def test_the_report_charts_the_shares_and_a_second_run_runs_nothing(estimated):
    workdir, *_ = estimated
    html = (workdir / "results" / "report" / "index.html").read_text()
    assert 'id="shares-pattern-account"' in html and 'id="shares-pattern-period"' in html
    assert '<svg role="img" aria-label="pattern by learned classifier, per account"' in html
    assert "corrected with" in html and "human codes the share is" in html and "Not valid" not in html
    assert "sometime in autumn" in html
    assert planned_jobs(workdir) == {}


def test_a_second_round_draws_new_images_and_hand_picked_codes_are_flagged(estimated):
    workdir, truth, config, first = estimated
    drawn = set(pd.read_csv(workdir / "results" / "validation" / "sample.csv")["image_id"])
    config["validation"]["round"] = 2
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir, "--until", "validation_export")
    second = pd.read_csv(workdir / "results" / "validation" / "sample.csv")
    assert len(second) and not set(second["image_id"]) & drawn and (second["round"] == 2).all()
    tasks = json.loads((workdir / "results" / "validation" / "label_studio" / "tasks.json").read_text())
    assert all(0 < task["data"]["inclusion_probability"] <= 1 and task["data"]["round"] == 2 for task in tasks)

    # A code on an image neither round drew: the codes are no longer a probability sample, and everything says so.
    design = pd.read_parquet(workdir / "results" / "validation" / "design.parquet")
    picked = design.loc[design["round"] == 0, "image_id"].iloc[0]
    codes = pd.read_csv(workdir / "codes.csv")
    manifest = pd.read_parquet(workdir / "results" / "manifest.parquet").set_index("image_id")
    codes.loc[len(codes)] = [picked, "ann", "pattern", truth[manifest.loc[picked, "path"].split("/")[-1]]]
    codes.to_csv(workdir / "codes.csv", index=False)
    snakemake(workdir)
    summary = json.loads((workdir / "results" / "estimates" / "summary.json").read_text())
    assert not summary["probability_sample"] and summary["codes_outside_examples"] == [picked]
    table = pd.read_csv(workdir / "results" / "estimates" / "prevalence.csv")
    assert not table["valid"].any() and table["note"].str.contains("not drawn by the workflow's sample").any()
    html = (workdir / "results" / "report" / "index.html").read_text()
    assert 'id="estimates-not-valid"' in html and "Not weighted" in html
    metrics = pd.read_csv(workdir / "results" / "validation" / "metrics.csv")
    assert not metrics["weighted"].any()


@pytest.mark.browser
def test_the_shares_chart_is_drawn_in_chromium(estimated, browser):
    workdir, *_ = estimated
    page = browser.new_page()
    page.goto((workdir / "results" / "report" / "index.html").as_uri())
    chart = page.locator("#shares-pattern-account svg")
    box = chart.bounding_box()
    assert box and box["width"] > 400 and box["height"] > 80
    assert page.locator("#shares-pattern-account svg g.mark-symbol path").count() >= 4 * 3 * 2  # categories x groups x kinds
    assert page.locator("#shares-pattern-account svg g.mark-rule line, #shares-pattern-account svg g.mark-rule path").count() >= 4
    text = chart.evaluate("svg => svg.textContent")
    assert "corrected (PPI)" in text and "machine only" in text and "party_a" in text
