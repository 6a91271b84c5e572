"""Validation: the sample, Label Studio's formats, the three import formats, the gold standard, and metrics
checked against published worked examples."""

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pandas as pd
import pytest

from imagecoding.validation.annotations import gold_standard, read_codes, study_gold
from imagecoding.validation.labelstudio import default_document_root, image_url, labeling_config, tasks
from imagecoding.validation.metrics import against_coders, against_gold, between_coders, sentences
from imagecoding.validation.sample import stratified_sample
from imagecoding.validation.variables import CodedVariable

KIND = CodedVariable("kind", ("Poster", "Rally", "Portrait"), ("clip", "ensemble"))
INDOORS = CodedVariable("Setting_Space", ("Indoors", "Outdoors"), ("frames",))


def ids(n: int) -> list[str]:
    return [f"{i:064x}" for i in range(n)]


# -- metrics against worked examples ---------------------------------------------------------------

def test_kappa_accuracy_and_f1_match_hand_computed_values():
    # 50 items, the textbook 2x2 table: both yes 20, both no 15, 5 and 10 disagreements.
    # p_o = 0.70, p_e = 0.5*0.6 + 0.5*0.4 = 0.50, kappa = 0.40; F1(yes) = 40/55, F1(no) = 30/45.
    gold = ["yes"] * 25 + ["no"] * 25
    said = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    index = ids(50)
    rows, matrix = against_gold("clip", "v", pd.Series(said, index=index), pd.Series(gold, index=index), ["yes", "no"], bootstrap=200)
    got = {(r["metric"], r["class"]): r for r in rows}
    assert got[("kappa", None)]["value"] == pytest.approx(0.40)
    assert got[("accuracy", None)]["value"] == pytest.approx(0.70)
    assert got[("f1", "yes")]["value"] == pytest.approx(40 / 55) and got[("f1", "no")]["value"] == pytest.approx(30 / 45)
    assert got[("macro_f1", None)]["value"] == pytest.approx((40 / 55 + 30 / 45) / 2)
    assert got[("support", "yes")]["value"] == 25 and got[("recall", "yes")]["value"] == pytest.approx(0.8)
    kappa = got[("kappa", None)]
    assert kappa["ci_low"] < 0.40 < kappa["ci_high"] and kappa["n"] == 50
    again, _ = against_gold("clip", "v", pd.Series(said, index=index), pd.Series(gold, index=index), ["yes", "no"], bootstrap=200)
    assert again == rows  # the bootstrap is seeded
    assert matrix.loc["yes", "yes"] == 20 and matrix.loc["yes", "no"] == 5 and matrix.loc["no", "yes"] == 10


def test_krippendorffs_alpha_matches_the_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the nominal example with four
    # coders, twelve units and missing values: alpha = 0.743.
    nan = None
    table = [[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
             [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]]
    codes = pd.DataFrame([{"image_id": f"u{unit}", "coder": f"c{coder}", "variable": "v", "value": str(value)}
                          for coder, row in enumerate(table) for unit, value in enumerate(row) if value is not None])
    rows = between_coders("v", codes, ["1", "2", "3", "4", "5"])
    (alpha,) = [r for r in rows if r["metric"] == "krippendorff_alpha"]
    assert alpha["value"] == pytest.approx(0.743, abs=5e-4) and alpha["n"] == 11  # unit 12 has one code only
    pairs = [r for r in rows if r["metric"] == "percent_agreement"]
    assert len(pairs) == 6 and all(0 <= r["value"] <= 100 for r in pairs)


def test_a_method_is_judged_like_one_more_coder_and_described_in_a_sentence():
    index = ids(4)
    codes = pd.DataFrame({"image_id": index * 2, "coder": ["ann"] * 4 + ["bob"] * 4, "variable": "kind",
                          "value": ["Poster", "Rally", "Poster", "Rally", "Poster", "Rally", "Rally", "Rally"]})
    predicted = pd.Series(["Poster", "Rally", "Poster", "Poster"], index=index)
    rows = against_coders("clip", "kind", predicted, codes)
    agreement = {(r["against"], r["metric"]): r["value"] for r in rows}
    assert agreement[("coder:ann", "percent_agreement")] == 75.0 and agreement[("coder:bob", "percent_agreement")] == 50.0
    gold_rows, _ = against_gold("clip", "kind", predicted, pd.Series(["Poster", "Rally", "Poster", "Rally"], index=index),
                                list(KIND.values), bootstrap=50)
    (sentence,) = sentences(pd.DataFrame(gold_rows))
    assert sentence.startswith("CLIP kind agrees with the human gold standard on 75% of 4 images, κ = 0.50 [")


# -- sample and Label Studio ------------------------------------------------------------------------

def test_the_sample_is_stratified_with_a_minimum_and_stable():
    predictions = pd.DataFrame({"image_id": ids(300), "kind": ["Poster"] * 250 + ["Rally"] * 45 + ["Portrait"] * 5})
    sample = stratified_sample(predictions, "kind", size=40, minimum=8, seed=3)
    counts = sample["stratum"].value_counts()
    assert len(sample) == 40 and counts["Portrait"] == 5 and counts["Rally"] >= 8 and counts["Poster"] > counts["Rally"]
    assert sample.equals(stratified_sample(predictions, "kind", size=40, minimum=8, seed=3))
    grown = pd.concat([predictions, pd.DataFrame({"image_id": [f"new{i}" for i in range(30)], "kind": "Poster"})])
    again = stratified_sample(grown, "kind", size=40, minimum=8, seed=3)
    assert len(set(sample["image_id"]) & set(again["image_id"])) >= 34  # added images displace only a few
    assert set(stratified_sample(predictions, "kind", 40, 8, seed=4)["image_id"]) != set(sample["image_id"])


def test_the_labeling_config_and_tasks_follow_label_studios_formats(tmp_path):
    xml = ElementTree.fromstring(labeling_config([KIND, INDOORS]))
    assert xml.tag == "View" and xml.find("Image").get("name") == "image" and xml.find("Image").get("value") == "$image"
    choices = {c.get("name"): [x.get("value") for x in c.findall("Choice")] for c in xml.findall("Choices")}
    assert choices == {"kind": ["Poster", "Rally", "Portrait"], "Setting_Space": ["Indoors", "Outdoors"]}
    assert all(c.get("toName") == "image" and c.get("choice") == "single" for c in xml.findall("Choices"))
    images = tmp_path / "images"
    url = image_url(images / "sub" / "a b.jpg", images, default_document_root(images), None)
    sample = [{"image_id": "a", "path": "sub/a b.jpg", "url": url}]
    made = tasks(sample, {"clip": {"a": {"kind": "Poster", "Setting_Space": None}}, "frames": {"a": {"Setting_Space": "Indoors"}}})
    assert made[0]["data"] == {"image": "/data/local-files/?d=images/sub/a%20b.jpg", "image_id": "a", "path": "sub/a b.jpg"}
    assert [p["model_version"] for p in made[0]["predictions"]] == ["clip", "frames"]
    assert made[0]["predictions"][0]["result"] == [
        {"from_name": "kind", "to_name": "image", "type": "choices", "value": {"choices": ["Poster"]}}]
    prefixed = image_url(images / "sub" / "a.jpg", images, tmp_path, "https://files.example.org/img/")
    assert prefixed == "https://files.example.org/img/sub/a.jpg"  # the prefix serves images.root
    with pytest.raises(ValueError, match="LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"):
        image_url("/elsewhere/x.jpg", images, tmp_path, None)


# -- the three import formats -----------------------------------------------------------------------

@pytest.fixture
def manifest():
    return pd.DataFrame({"image_id": ids(4), "path": [f"img{i}.jpg" for i in range(4)], "status": "ok"})


def export(tmp_path, manifest) -> Path:
    def annotation(coder, value, cancelled=False):
        return {"completed_by": coder, "was_cancelled": cancelled,
                "result": [] if cancelled else [{"from_name": "kind", "to_name": "image", "type": "choices", "value": {"choices": [value]}}]}

    exported = [
        {"id": 1, "data": {"image_id": manifest["image_id"][0], "path": "img0.jpg"},
         "annotations": [annotation(1, "Poster"), annotation({"id": 2, "email": "bob@lab"}, "Rally")]},
        {"id": 2, "data": {"image_id": manifest["image_id"][1]}, "annotations": [annotation(1, "Rally"), annotation(2, None, True)]},
        {"id": 3, "data": {"image_id": manifest["image_id"][2]}, "annotations": [annotation(1, "Spaceship")]},
        {"id": 4, "data": {"image_id": "f" * 64}, "annotations": [annotation(1, "Poster")]},
        {"id": 5, "data": {"image_id": manifest["image_id"][3]}, "annotations": []},
    ]
    path = tmp_path / "project-1-at-2026.json"
    path.write_text(json.dumps(exported))
    return path


def test_label_studio_exports_sheets_and_right_wrong_csvs_are_read_and_problems_counted(tmp_path, manifest):
    long = tmp_path / "sheet.csv"
    long.write_text("path;coder;variable;value\nimg1.jpg;carla;kind;Rally\nimg1.jpg;carla;kind;Portrait\nnope.jpg;carla;kind;Rally\n")
    wide = tmp_path / "wide.csv"
    wide.write_text(f"image_id,coder,kind,Setting_Space\n{manifest['image_id'][2]},dora,Poster,\n")
    check = tmp_path / "check-judgements.csv"
    check.write_text("scheme,image_id,path,category,prob,judgement\n"
                     f"kind,{manifest['image_id'][0]},img0.jpg,Poster,80,right\nkind,{manifest['image_id'][1]},img1.jpg,Poster,60,wrong\n")
    read = read_codes([str(export(tmp_path, manifest)), str(long), str(wide), str(check)], [KIND, INDOORS], manifest)
    codes, report = read.codes, read.report
    counted = {(r["source"], r["problem"]): r["count"] for r in report.to_dict("records")}
    name = "project-1-at-2026.json"
    assert counted[(name, "cancelled or skipped annotations")] == 1 and counted[(name, "tasks without annotations")] == 1
    assert counted[(name, "value outside the scheme or codebook")] == 1 and counted[(name, "unknown image")] == 1
    assert counted[("sheet.csv", "unknown image")] == 1 and counted[("wide.csv", "empty cells (not coded)")] == 1
    assert counted[("check-judgements.csv", "judged wrong (no code: the right category is unknown)")] == 1
    assert counted[("all", "second judgement of an image by the same coder (the last one counts)")] == 1
    table = codes.set_index(["image_id", "coder"])["value"]
    first, second, third = manifest["image_id"][:3]
    assert table[(first, "1")] == "Poster" and table[(first, "bob@lab")] == "Rally" and table[(first, "checker")] == "Poster"
    assert table[(second, "carla")] == "Portrait" and table[(third, "dora")] == "Poster"  # the last judgement counts


def test_the_study_gold_leaves_out_values_no_longer_in_the_scheme_and_names_them(tmp_path, manifest):
    first, second = manifest["image_id"][:2]
    sheet = tmp_path / "sheet.csv"
    # carla's later code of the first image is a category the scheme no longer has: her earlier one still counts,
    # as it does for every step (validation_metrics, the learner, the estimates and routing all read study_gold).
    sheet.write_text(f"image_id,coder,variable,value\n{first},carla,kind,Rally\n{first},carla,kind,Speech\n"
                     f"{second},dora,kind,Speech\n{second},dora,Setting_Space,Indoors\n")
    validation = {"check_coder": "checker", "coders": {"dora": "Dora"}, "adjudicator": None}
    study = study_gold([str(sheet)], [KIND, INDOORS], manifest, validation)
    assert study.gold[["image_id", "variable", "value"]].values.tolist() == [
        [first, "kind", "Rally"], [second, "Setting_Space", "Indoors"]]
    assert study.outside[["image_id", "coder", "value"]].values.tolist() == [[first, "carla", "Speech"],
                                                                            [second, "Dora", "Speech"]]
    assert study.codes["coder"].tolist() == ["carla", "Dora"] and study.ties.empty
    counted = study.report.set_index(["source", "problem"])["count"]
    assert counted[("sheet.csv", "value outside the scheme or codebook")] == 2


def test_the_gold_standard_is_the_majority_and_ties_go_to_the_adjudicator():
    codes = pd.DataFrame({
        "image_id": ["a", "a", "a", "b", "b", "c", "c"],
        "coder": ["x", "y", "z", "x", "y", "x", "y"],
        "variable": "kind",
        "value": ["Poster", "Poster", "Rally", "Poster", "Rally", "Rally", "Portrait"],
    })
    gold, ties = gold_standard(codes, adjudicator="y")
    assert gold.set_index("image_id")["value"].to_dict() == {"a": "Poster", "b": "Rally", "c": "Portrait"}
    gold, ties = gold_standard(codes, adjudicator=None)
    assert list(gold["image_id"]) == ["a"] and len(ties) == 2 and not ties["resolved"].any()
