"""Routing's statistics against known truth: the certified threshold keeps its promise over many simulated studies,
and its parts (the bounds, the walk, the cheap methods, the routed codes) do what the docs say."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from imagecoding.routing.cheap import Cheap, cheap_answers
from imagecoding.routing.curve import GRID, choose_threshold, cost_curve, effective_n, interval, lower_bound
from imagecoding.routing.run import RouteSettings, SchemeRoute, plan_scheme, unsure_first
from imagecoding.routing.tables import routed_table

CATEGORIES = np.array(["A", "B", "C"])


def population(rng, n: int, llm_accuracy: float = 0.95):
    """Images with a true category, a cheap method right with probability equal to its confidence, and an LLM right
    with probability llm_accuracy whatever the confidence."""
    truth = rng.integers(0, 3, n)
    confidence = rng.beta(4, 1.3, n)
    cheap_right = rng.random(n) < confidence
    cheap = np.where(cheap_right, truth, (truth + rng.integers(1, 3, n)) % 3)
    llm = np.where(rng.random(n) < llm_accuracy, truth, (truth + rng.integers(1, 3, n)) % 3)
    ids = pd.Index([f"img{i}" for i in range(n)])
    return (pd.Series(CATEGORIES[truth], ids), Cheap("learned", pd.Series(CATEGORIES[cheap], ids),
                                                     pd.Series(confidence, ids), pd.Series(True, ids)),
            pd.Series(CATEGORIES[llm], ids))


def true_accuracy(truth: pd.Series, cheap: Cheap, llm: pd.Series, threshold: float) -> float:
    stands = cheap.agree & (cheap.confidence > threshold)
    return float((cheap.category.where(stands, llm) == truth).mean())


def test_clopper_pearson_bounds_agree_with_scipys_exact_binomial_interval():
    for successes, n in [(0, 10), (7, 10), (10, 10), (180, 200), (41, 50)]:
        exact = binomtest(successes, n).proportion_ci(confidence_level=0.8, method="exact")
        assert lower_bound(successes / n, n, 0.1) == pytest.approx(exact.low, abs=1e-9)
        low, high = interval(successes / n, n, 0.8)
        assert (low, high) == (pytest.approx(exact.low, abs=1e-9), pytest.approx(exact.high, abs=1e-9))
    assert effective_n(np.ones(40)) == pytest.approx(40)
    assert effective_n(np.array([1.0, 1.0, 4.0, 4.0])) < 4  # unequal weights carry less information


def test_the_certified_threshold_keeps_its_accuracy_promise_in_at_least_1_minus_delta_of_studies():
    """300 studies, each coding a simple random sample of 250 of 5,000 images: the true routed accuracy at the chosen
    threshold misses the target in at most delta of them (with Monte Carlo slack), while sending far from all."""
    rng = np.random.default_rng(7)
    target, delta, studies = 0.9, 0.1, 300
    misses, sent = 0, []
    for _ in range(studies):
        truth, cheap, llm = population(rng, 5000)
        coded = pd.Index(rng.choice(truth.index, 250, replace=False))
        curve = cost_curve("s", cheap, llm.reindex(coded), truth.reindex(coded), pd.Series(1.0, coded), set(coded), 0.01,
                           target, delta)
        threshold, _ = choose_threshold(curve)  # uncertified: 1, every image to the LLM (95%, above the target)
        misses += true_accuracy(truth, cheap, llm, threshold) < target
        sent.append(float((~(cheap.confidence > threshold)).mean()))
    slack = 3 * np.sqrt(delta * (1 - delta) / studies)
    print(f"missed in {misses} of {studies} studies; median share sent {np.median(sent):.2f}")
    assert misses / studies <= delta + slack, misses
    assert np.median(sent) < 0.7  # it is not certifying by sending everything


def test_the_walk_stops_at_the_first_threshold_that_misses_and_sends_everything_when_even_the_llm_misses():
    rng = np.random.default_rng(3)
    truth, cheap, llm = population(rng, 2000)
    coded = truth.index[:300]
    curve = cost_curve("s", cheap, llm.reindex(coded), truth.reindex(coded), pd.Series(1.0, coded), set(coded), 0.02,
                       0.9, 0.1)
    assert list(curve["threshold"]) == list(GRID) and (curve["requests"] >= 300).all()
    threshold, certified = choose_threshold(curve)
    above = curve[curve["threshold"] >= threshold]
    assert certified and above["certified"].all()
    below = curve[curve["threshold"] < threshold]
    assert below.empty or not below.sort_values("threshold").iloc[-1]["certified"]
    # the curve's right end is the LLM on every image, its left end the cheap method wherever it agrees
    assert curve.iloc[-1]["share_sent"] == 1.0 and curve.iloc[0]["share_sent"] == 0.0
    assert curve.iloc[-1]["dollars"] == pytest.approx(2000 * 0.02)

    _, _, bad_llm = population(np.random.default_rng(4), 2000, llm_accuracy=0.5)
    curve = cost_curve("s", cheap, bad_llm.reindex(coded), truth.reindex(coded), pd.Series(1.0, coded), set(coded), 0.02,
                       0.9, 0.1)
    assert choose_threshold(curve) == (1.0, False)


def test_weights_count_each_code_for_the_images_it_stands_for():
    """Two strata: codes of a rare stratum drawn at a high rate must not pass for the common one."""
    ids = pd.Index([f"i{k}" for k in range(200)])
    cheap = Cheap("clip", pd.Series("A", ids), pd.Series(0.99, ids), pd.Series(True, ids))
    truth = pd.Series(["A"] * 100 + ["B"] * 100, ids)  # the cheap method is right on the first half only
    coded = ids[:50].append(ids[100:110])
    weights = pd.Series([1.0] * 50 + [10.0] * 10, coded)  # the second half was drawn ten times less often
    curve = cost_curve("s", cheap, truth.reindex(coded), truth.reindex(coded), weights, set(coded), 0.0, 0.9, 0.1)
    cheap_only = curve[curve["threshold"] == 0.0].iloc[0]
    assert cheap_only["accuracy"] == pytest.approx(50 / 150)  # not 50 / 60
    assert curve.iloc[-1]["accuracy"] == 1.0


def test_cheap_modes_decide_by_the_learned_classifier_fall_back_to_clip_and_send_disagreements():
    clip = pd.DataFrame({"image_id": ["a", "b", "c"], "s": ["X", "Y", "X"], "s_prob": [90.0, 80.0, 40.0]})
    learned = pd.DataFrame({"image_id": ["a", "b", "c"], "s": ["X", "X", "X"], "s_prob": [99.0, 99.0, 99.0],
                            "s_crossfit": ["X", "X", "X"], "s_crossfit_prob": [95.0, 99.0, 70.0]})
    auto = cheap_answers("s", "auto", clip, learned)
    assert auto.method == "learned" and auto.confidence["c"] == pytest.approx(0.7)  # the cross-fit probability
    assert cheap_answers("s", "clip", clip, learned).confidence["c"] == pytest.approx(0.4)
    fallback = cheap_answers("s", "learned", clip, None)
    assert fallback.method == "clip" and "was not learned" in fallback.note
    both = cheap_answers("s", "agreement", clip, learned)
    assert both.method == "learned and clip" and list(both.agree) == [True, False, True]
    plan = SchemeRoute("s", both, 0.5, False, "")
    assert list(plan.unsure()) == [False, True, False]  # b: the two disagree, however sure the learner is
    requests = {i: object() for i in "abc"}
    assert unsure_first(requests, {"s": SchemeRoute("s", both, 0.8, False, "")}, set()) == [requests["b"], requests["c"]]
    with pytest.raises(ValueError, match="route.cheap"):
        cheap_answers("s", "vote", clip, learned)


def test_routed_codes_take_the_llm_where_it_was_sent_and_answered_and_the_cheap_code_elsewhere():
    ids = pd.Index(["a", "b", "c", "d"])
    cheap = Cheap("learned", pd.Series(["X", "X", "Y", "Y"], ids), pd.Series([0.99, 0.3, 0.2, 0.95], ids),
                  pd.Series(True, ids))
    answers = pd.DataFrame({"image_id": ["a", "b", "c"], "s": ["Y", "Y", None],
                            "status": ["ok", "ok", "skipped_budget"]})
    table = routed_table(SchemeRoute("s", cheap, 0.5, True, ""), answers).set_index("image_id")
    assert list(table["routed"]) == ["X", "Y", "Y", "Y"]
    assert list(table["by"]) == ["learned", "multimodal", "learned", "learned"]  # c: sent, but the budget ran out
    assert list(table["sent"]) == [False, True, True, False]
    assert table.loc["c", "multimodal_status"] == "skipped_budget"


def test_without_codes_or_answers_the_fixed_threshold_applies_and_is_not_certified():
    ids = pd.Index(["a", "b"])
    cheap = Cheap("clip", pd.Series(["X", "Y"], ids), pd.Series([0.9, 0.5], ids), pd.Series(True, ids))
    settings = RouteSettings(enabled=True, threshold=0.7)
    plan = plan_scheme("s", cheap, None, pd.Series(dtype=object), pd.Series(dtype=float), True, settings, 0.01, set())
    assert (plan.threshold, plan.certified) == (0.7, False) and "no human codes" in plan.reason
    assert list(plan.unsure()) == [False, True]
    gold = pd.Series(["X"], index=["a"])
    plan = plan_scheme("s", cheap, None, gold, pd.Series(1.0, ["a"]), True, settings, 0.01, {"a"})
    assert not plan.certified and "not yet answered" in plan.reason
