"""Consensus across methods, and agreement checked against a worked example of Cohen's kappa."""

import pandas as pd
import pytest

from imagecoding.consensus import consensus_table, frames_as_scheme, pairwise_agreement


def test_majority_ties_and_splits():
    ids = ["a", "b", "c", "d"]
    methods = {
        "clip": pd.Series({"a": "Poster", "b": "Rally", "c": "Poster", "d": "Rally"}),
        "ensemble": pd.Series({"a": "Poster", "b": "Poster", "c": None}),
        "frames": pd.Series({"a": "Poster", "b": "Portrait"}),
    }
    table = consensus_table(ids, methods).set_index("image_id")
    assert table.loc["a", ["majority", "methods", "agree", "split"]].tolist() == ["Poster", 3, 3, False]
    assert pd.isna(table.loc["b", "majority"]) and table.loc["b", "split"]  # three different answers: no majority
    assert table.loc["c", ["majority", "methods", "split"]].tolist() == ["Poster", 1, False]
    assert pd.isna(table.loc["d", "ensemble"]) and table.loc["d", "methods"] == 1


def test_kappa_and_percent_match_a_worked_example():
    # The textbook example: 50 items, yes/no; both yes 20, both no 15, 5 and 10 disagreements.
    # p_o = 35/50 = 0.70; p_e = 0.5*0.6 + 0.5*0.4 = 0.50; kappa = (0.70 - 0.50) / (1 - 0.50) = 0.40.
    first = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    table = pd.DataFrame({"a": first, "b": second})
    (row,) = pairwise_agreement("s", table, ["a", "b"], ["yes", "no"]).to_dict("records")
    assert row["n"] == 50 and row["percent"] == pytest.approx(70.0) and row["kappa"] == pytest.approx(0.40)


def test_agreement_counts_only_images_both_methods_coded():
    table = pd.DataFrame({"a": ["x", "y", None, "x"], "b": ["x", None, "y", "y"]})
    (row,) = pairwise_agreement("s", table, ["a", "b"], ["x", "y"]).to_dict("records")
    assert row["n"] == 2 and row["percent"] == pytest.approx(50.0)


def test_frame_codes_map_onto_scheme_categories():
    frames = pd.DataFrame({
        "image_id": ["a", "b", "c", "d"],
        "Event_Occasion": ["CampaignMaterial", "Protest", "CampaignEvent", None],
        "status": ["ok", "ok", "invalid", "error"],
    })
    mapped = frames_as_scheme(frames, "Event_Occasion", {"CampaignMaterial": "Campaign material",
                                                         "CampaignEvent": "Political event"},
                              ["Campaign material", "Political event"])
    assert mapped["a"] == "Campaign material" and mapped["c"] == "Political event"
    assert pd.isna(mapped["b"]) and "d" not in mapped.index  # unmapped value: no category; failed answer: not coded
    with pytest.raises(ValueError, match="not a category"):
        frames_as_scheme(frames, "Event_Occasion", {"Protest": "Riot"}, ["Campaign material"])
