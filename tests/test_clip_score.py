"""Scoring: the three aggregations against values worked out by hand, and the seeds' method exactly."""

from math import exp, sqrt
from pathlib import Path

import numpy as np
import pytest

from imagecoding.schemes import SchemeError, load_scheme, scheme_from_mapping
from imagecoding.clip.scoring import l2_normalise, score_table

# Categories A (two phrases), B and C (one each) in three dimensions.
SCHEME = scheme_from_mapping("kind", {"A": ["a one", "a two"], "B": ["b one"], "C": ["c one"]})
PHRASES = np.array([[1, 0, 0], [0, 1, 0], [0.6, 0.8, 0], [0, 0, 1]], dtype=np.float32)
IMAGES = np.array([[1, 0, 0], [0, 0, 1]], dtype=np.float32)


def table(aggregate, top_k=3):
    return score_table(["first", "second"], IMAGES, PHRASES, SCHEME, 1.0, aggregate, top_k).set_index("image_id")


def test_max_takes_the_category_of_the_best_phrase():
    # first image: cosines 1, 0, 0.6, 0 -> softmax over all four phrases
    total = exp(1) + exp(0) + exp(0.6) + exp(0)
    row = table("max").loc["first"]
    assert row["kind"] == "A" and row["kind_label"] == "a one"
    assert row["kind_prob"] == pytest.approx(100 * exp(1) / total, abs=1e-4)
    assert [row["kind_1"], row["kind_2"], row["kind_3"]] == ["A", "B", "C"]
    assert row["kind_prob_2"] == pytest.approx(100 * exp(0.6) / total, abs=1e-4)
    assert row["kind_prob_3"] == pytest.approx(100 / total, abs=1e-4)


def test_sum_adds_the_probabilities_of_a_categorys_phrases():
    total = exp(1) + 1 + exp(0.6) + 1
    row = table("sum").loc["first"]
    assert row["kind"] == "A"
    assert row["kind_prob"] == pytest.approx(100 * (exp(1) + 1) / total, abs=1e-4)
    # second image: cosines 0, 0, 0, 1; A holds two of the four phrases
    second = table("sum").loc["second"]
    total = 3 + exp(1)
    assert [second["kind_1"], second["kind_2"], second["kind_3"]] == ["C", "A", "B"]
    assert second["kind_prob_2"] == pytest.approx(100 * 2 / total, abs=1e-4)


def test_mean_scores_the_normalised_mean_phrase_embedding():
    # A's centroid is (1, 1, 0)/sqrt(2): cosine 1/sqrt(2) with the first image
    total = exp(1 / sqrt(2)) + exp(0.6) + exp(0)
    row = table("mean").loc["first"]
    assert row["kind"] == "A"
    assert row["kind_prob"] == pytest.approx(100 * exp(1 / sqrt(2)) / total, abs=1e-4)
    assert row["kind_prob_2"] == pytest.approx(100 * exp(0.6) / total, abs=1e-4)
    assert row["kind_label"] == "a one"  # the category's closest phrase


def test_ranks_are_distinct_categories_and_ties_keep_scheme_order():
    row = table("max").loc["second"]
    assert [row["kind_1"], row["kind_2"], row["kind_3"]] == ["C", "A", "B"]
    assert row["kind_prob_2"] == pytest.approx(row["kind_prob_3"])


def test_top_k_limits_the_rank_columns():
    columns = table("max", top_k=2).columns
    assert "kind_2" in columns and "kind_3" not in columns
    assert "kind_10" not in table("max", top_k=10).columns  # capped at the number of categories


def test_probabilities_are_percentages_that_sum_to_100_for_sum():
    rng = np.random.default_rng(1)
    images = l2_normalise(rng.normal(size=(50, 3)).astype(np.float32))
    result = score_table([str(i) for i in range(50)], images, PHRASES, SCHEME, 100.0, "sum", 3)
    totals = result[["kind_prob_1", "kind_prob_2", "kind_prob_3"]].sum(axis=1)
    assert np.allclose(totals, 100, atol=1e-3)


def test_max_reproduces_the_seeds_method_exactly():
    """Softmax of logit_scale * cosine over every phrase, x100; the best phrase names the category."""
    rng = np.random.default_rng(7)
    scheme = scheme_from_mapping("t", {f"cat{c}": [f"phrase {c}-{p}" for p in range(c + 1)] for c in range(5)})
    phrases = l2_normalise(rng.normal(size=(len(scheme.phrases), 16)).astype(np.float32))
    images = l2_normalise(rng.normal(size=(200, 16)).astype(np.float32))
    result = score_table([str(i) for i in range(200)], images, phrases, scheme, 100.0, "max", 1)

    logits = 100.0 * images.astype(np.float64) @ phrases.T.astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = 100 * probs / probs.sum(axis=1, keepdims=True)
    best = probs.argmax(axis=1)
    assert list(result["t_label"]) == [scheme.phrases[i] for i in best]
    assert list(result["t"]) == [scheme.categories[scheme.phrase_category[i]] for i in best]
    assert np.allclose(result["t_prob"], probs[np.arange(200), best], atol=1e-3)


def test_unknown_aggregate_is_refused():
    with pytest.raises(ValueError, match="clip.aggregate"):
        table("median")


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"A": ["same phrase"], "B": ["same phrase"]}, "appears under both"),
        ({"A": ["a phrase"]}, "at least two categories"),
        ({"A": [], "B": ["x"]}, "non-empty list"),
        (["not", "a", "mapping"], "must map each category"),
        ({"A": ["  "], "B": ["x"]}, "empty or non-text"),
    ],
)
def test_bad_schemes_are_explained(mapping, message):
    with pytest.raises(SchemeError, match=message):
        scheme_from_mapping("bad", mapping, "bad.yaml")


def test_bundled_scheme_loads(tmp_path):
    scheme = load_scheme("image_type", Path(__file__).parent.parent / "config/schemes/image_types.yaml")
    assert len(scheme.categories) == 6
    assert all(scheme.phrases_of(c) for c in scheme.categories)
    with pytest.raises(SchemeError, match="clip.schemes.missing"):
        load_scheme("missing", tmp_path / "nope.yaml")
