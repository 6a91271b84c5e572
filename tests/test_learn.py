"""The learned classifier: honest out-of-fold metrics, C chosen by cross-validation, and a clear skip below min_per_class."""

import numpy as np
import pytest

from imagecoding.clip.scoring import l2_normalise
from imagecoding.learn.curve import balanced_subsample, learning_curve
from imagecoding.learn.probe import (
    C_GRID, TooFewCodes, check_enough, fit, gold_on_embeddings, model_record, out_of_fold, predict_proba,
    prediction_table, summary,
)


def clusters(n_per_class: int, classes: int = 4, dims: int = 32, noise: float = 0.6, seed: int = 0):
    """Normalised points around one random centre per class: separable, but not by a random direction."""
    rng = np.random.default_rng(seed)
    centres = l2_normalise(rng.normal(size=(classes, dims)))
    y = np.repeat(np.asarray([f"c{k}" for k in range(classes)], dtype=object), n_per_class)
    X = l2_normalise(centres[np.repeat(np.arange(classes), n_per_class)] + rng.normal(scale=noise / np.sqrt(dims), size=(len(y), dims)))
    return X, y, rng


def oof_labels(X, y, **kwargs):
    return np.unique(y)[out_of_fold(X, y, **kwargs).argmax(axis=1)]


def test_on_separable_classes_the_learner_beats_zero_shot_out_of_fold():
    X, y, rng = clusters(20)
    # Zero-shot stand-in: phrase embeddings that point nowhere near the classes.
    phrases = l2_normalise(rng.normal(size=(4, X.shape[1])))
    zero_shot = np.asarray([f"c{k}" for k in np.argmax(X @ phrases.T, axis=1)], dtype=object)
    learned = oof_labels(X, y, folds=5, seed=1)
    assert summary(y, learned)["accuracy"] >= 0.9
    assert summary(y, learned)["accuracy"] > summary(y, zero_shot)["accuracy"] + 0.3


def test_c_is_the_grid_point_with_the_best_cross_validated_accuracy():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    X, y, _ = clusters(12, noise=2.5, seed=3)
    model, chosen = fit(X, y, folds=4, seed=0)
    folds = StratifiedKFold(4, shuffle=True, random_state=0)
    scores = [cross_val_score(LogisticRegression(C=c, max_iter=2000), X, y, cv=folds).mean() for c in C_GRID]
    assert model.C == chosen["C"] and model.C in C_GRID and not chosen["phrase_points"]
    assert max(scores) - scores[C_GRID.index(model.C)] < 1e-9
    assert abs(chosen["cv_accuracy"] - max(scores)) < 1e-9


def test_phrase_points_are_kept_only_where_they_raise_cross_validated_accuracy():
    X, y, rng = clusters(5, noise=3.0, seed=11)
    truth, _, _ = clusters(1, noise=0.0, seed=11)  # the class centres: phrases that describe each class well
    _, helpful = fit(X, y, folds=5, seed=0, extra=(truth, np.unique(y)))
    assert helpful["phrase_points"]
    misleading = np.roll(np.unique(y), 1)  # each centre labelled as another class
    _, chosen = fit(X, y, folds=5, seed=0, extra=(np.repeat(truth, 10, axis=0), np.repeat(misleading, 10)))
    assert not chosen["phrase_points"]


def test_out_of_fold_predictions_never_come_from_a_model_that_saw_the_code():
    """Random labels cannot be learned: out of fold the accuracy stays near chance, the training fit does not."""
    rng = np.random.default_rng(5)
    X = l2_normalise(rng.normal(size=(80, 64)))
    y = np.asarray(rng.choice(["a", "b"], 80), dtype=object)
    assert summary(y, oof_labels(X, y, folds=5, seed=0))["accuracy"] < 0.75
    from sklearn.linear_model import LogisticRegression

    assert LogisticRegression(C=1e6, max_iter=5000).fit(X, y).score(X, y) > 0.95  # what a leak would report


def test_too_few_codes_name_each_short_category_and_how_many_more():
    values = np.asarray(["a"] * 6 + ["b"] * 3, dtype=object)
    with pytest.raises(TooFewCodes, match=r"b: 2 more, c: 5 more"):
        check_enough(values, ["a", "b", "c"], 5)
    check_enough(values, ["a", "b"], 3)


def test_codes_on_failed_embeddings_and_removed_categories_are_counted_not_used():
    import pandas as pd

    gold = pd.Series({"i1": "a", "i2": "b", "i3": "gone", "i4": "a"})
    vectors = {"i1": np.ones(2), "i2": np.ones(2), "i3": np.ones(2)}
    data = gold_on_embeddings(gold, ["a", "b"], vectors)
    assert data.image_ids == ["i1", "i2"] and data.not_embedded == ["i4"] and data.outside == {"gone": 1}


def test_the_model_record_is_plain_json_and_predicts_as_scikit_learn_does():
    import json

    for classes in (2, 4):
        X, y, _ = clusters(10, classes=classes, seed=classes)
        model, _ = fit(X, y, folds=3)
        record = json.loads(json.dumps(model_record(model, "v", {"model": "m"})))
        assert np.allclose(predict_proba(record, X), model.predict_proba(X), atol=1e-6)
        table = prediction_table("v", [f"i{k}" for k in range(len(y))], predict_proba(record, X), record["classes"], 3)
        assert list(table["v"]) == list(model.predict(X))
        assert {"v_prob", "v_1", "v_prob_1"} <= set(table.columns)


def test_the_learning_curve_draws_balanced_codes_and_tests_on_the_rest():
    X, y, _ = clusters(15, seed=7)
    sample = balanced_subsample(y, 10, np.random.default_rng(0))
    counts = np.unique(y[sample], return_counts=True)[1]
    assert len(sample) == 10 and counts.max() - counts.min() <= 1
    curve = learning_curve(X, y, [8, 20, 500], repeats=3, C=1.0)
    assert set(curve["n_codes"]) == {8, 20}  # 500 is more than there are codes
    assert (curve["n_test"] == len(y) - curve["n_codes"]).all() and len(curve) == 6
    assert curve.groupby("n_codes")["accuracy"].mean().loc[20] >= curve.groupby("n_codes")["accuracy"].mean().loc[8] - 0.1
