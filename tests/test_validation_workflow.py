"""End to end: a hand-made gold file turns into metrics.csv, confusion tables and the report's validation section."""

import pandas as pd
import pytest
import yaml

from workflow_helpers import planned_jobs, prepare_workdir, snakemake, write_config

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_checkpoint):
    workdir = prepare_workdir(tmp_path_factory.mktemp("validation"))
    write_config(workdir, tiny_checkpoint, extra={"validation": {"sample_size": 12, "min_per_category": 1, "bootstrap": 50}})
    snakemake(workdir)
    return workdir


def test_without_codes_the_sample_goes_out_and_the_report_says_how_to_get_codes(exported):
    sample = pd.read_csv(exported / "results" / "validation" / "sample.csv")
    sheet = pd.read_csv(exported / "results" / "validation" / "coding_sheet.csv")
    assert len(sample) == 12 and set(sheet["image_id"]) == set(sample["image_id"])
    assert not (exported / "results" / "validation" / "metrics.csv").exists()
    html = (exported / "results" / "report" / "index.html").read_text()
    assert "No human codes yet" in html and "validation.annotations" in html
    # Every image's chance of being drawn is on record, and each sampled image carries its own.
    design = pd.read_parquet(exported / "results" / "validation" / "design.parquet").set_index("image_id")
    assert (design["round"] == 1).sum() == 12 and (design["inclusion_probability"] > 0).all()
    assert sample.set_index("image_id")["inclusion_probability"].to_dict() == pytest.approx(
        design.loc[sample["image_id"], "inclusion_probability"].to_dict())
    assert "inclusion_probability" in sheet.columns
    shares = pd.read_csv(exported / "results" / "estimates" / "prevalence.csv")
    assert set(shares["group_by"]) >= {"overall", "account"} and shares["ppi"].isna().all()
    assert shares["note"].str.startswith("no coded image").all()
    assert "Shares of each category" in html and "machine's shares only" in html


def test_a_hand_made_gold_file_becomes_metrics_confusion_and_sentences(exported):
    sample = pd.read_csv(exported / "results" / "validation" / "sample.csv")
    clip = pd.read_parquet(exported / "results" / "clip" / "image_type.parquet").set_index("image_id")["image_type"]
    categories = sorted(clip.dropna().unique())
    ids = list(sample["image_id"])
    rows = []
    for number, image_id in enumerate(ids):
        agreeing = clip[image_id]
        other = next(c for c in categories if c != agreeing) if number % 4 == 0 else agreeing  # CLIP right on 3 in 4
        rows += [(image_id, "ann", "image_type", other), (image_id, "bob", "image_type", other)]
    rows += [(ids[0], "ann", "image_type", "Not a category"), ("0" * 64, "bob", "image_type", categories[0])]
    pd.DataFrame(rows, columns=["image_id", "coder", "variable", "value"]).to_csv(exported / "gold.csv", index=False)
    config = yaml.safe_load((exported / "config.yaml").read_text())
    config["validation"]["annotations"] = "gold.csv"
    (exported / "config.yaml").write_text(yaml.safe_dump(config))

    assert {"validation_metrics", "report"} <= set(planned_jobs(exported))  # the codes alone bring the metrics in
    snakemake(exported)
    metrics = pd.read_csv(exported / "results" / "validation" / "metrics.csv")
    assert {"method", "variable", "against", "class", "metric", "value", "ci_low", "ci_high", "n", "weighted"} == set(metrics.columns)
    gold = metrics[(metrics["method"] == "clip") & (metrics["against"] == "gold") & metrics["class"].isna()].set_index("metric")
    # The codes are the workflow's own stratified sample: each weighs 1 / its inclusion probability, so accuracy
    # is the corpus's estimated share of images CLIP gets right, not the sample's.
    design = pd.read_parquet(exported / "results" / "validation" / "design.parquet").set_index("image_id")
    # A drawn image stands for its near-duplicate group (the unit sampled): it weighs group size / the group's probability.
    sizes = design.groupby("duplicate_group").size()
    weight = design.loc[ids, "duplicate_group"].map(sizes) / design.loc[ids, "inclusion_probability"]
    right = pd.Series([number % 4 != 0 for number in range(len(ids))], index=ids)
    wrong = int((~right).sum())
    expected = float((weight * right).sum() / weight.sum())
    assert gold["weighted"].all() and not metrics.loc[metrics["against"] != "gold", "weighted"].any()
    assert gold.loc["accuracy", "value"] == pytest.approx(expected) and gold.loc["accuracy", "n"] == len(ids)
    assert gold.loc["accuracy", "ci_low"] <= expected <= gold.loc["accuracy", "ci_high"]
    assert {"macro_f1", "kappa"} <= set(gold.index)
    coders = metrics[(metrics["method"] == "coders") & (metrics["metric"] == "krippendorff_alpha")]
    assert coders["value"].item() == pytest.approx(1.0)  # ann and bob agree everywhere the bad code is left out

    confusion = pd.read_csv(exported / "results" / "validation" / "confusion" / "clip__image_type.csv", index_col=0)
    # Weighted, the confusion matrix estimates the images of the corpus: exactly every image of the sampled categories
    # when no picture has copies; with groups of copies, their Horvitz-Thompson estimate.
    assert confusion.to_numpy().sum() == pytest.approx(float(weight.sum()), abs=0.5)
    assert confusion.to_numpy().sum() == pytest.approx(len(design), rel=0.25)
    assert confusion.to_numpy().trace() == pytest.approx(float((weight * right).sum()), abs=0.5)
    assert wrong and (exported / "results" / "validation" / "confusion").is_dir()
    problems = pd.read_csv(exported / "results" / "validation" / "import_report.csv")
    counted = problems.set_index(["source", "problem"])["count"]
    assert counted[("gold.csv", "value outside the scheme or codebook")] == 1 and counted[("gold.csv", "unknown image")] == 1

    # Twelve codes over the scheme's categories are too few to learn from: the learner says so, per category.
    import json

    card = json.loads((exported / "results" / "learned" / "image_type.json").read_text())
    assert card["status"] == "skipped" and "learned.min_per_class" in card["reason"] and " more" in card["reason"]
    assert not pd.read_parquet(exported / "results" / "learned" / "image_type.parquet").shape[0]
    assert not (metrics["method"] == "learned").any()
    html = (exported / "results" / "report" / "index.html").read_text()
    assert "Not learned: every category needs at least 5 codes" in html
    assert "not learned" in (exported / "logs" / "learned" / "fit.log").read_text()
    percent = round(expected * 100)
    assert (f"CLIP image_type agrees with the human gold standard on an estimated {percent}% of the corpus "
            f"({len(ids)} codes weighted by their inclusion probabilities)") in html
    # Twelve codes are fewer than estimates.min_coded: the shares are the machine's only, and say why.
    shares = pd.read_csv(exported / "results" / "estimates" / "prevalence.csv")
    overall = shares[(shares["method"] == "clip") & (shares["group_by"] == "overall")]
    assert (overall["n_coded"] == len(ids)).all() and overall["ppi"].isna().all() and overall["naive"].notna().all()
    assert overall["note"].str.contains("fewer than estimates.min_coded").all()
    assert "No human codes yet" not in html and "value outside the scheme or codebook" in html  # problems are shown
