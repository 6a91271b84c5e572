"""CLIP tags: an object vocabulary scored against stored embeddings."""

import numpy as np
import pytest

from imagecoding.clip.scoring import l2_normalise
from imagecoding.signals.tags import VocabularyError, load_vocabulary, tag_table


def test_the_best_words_above_the_threshold_become_tags():
    words = ["flag", "crowd", "car", "dog"]
    word_embeddings = np.eye(4, dtype=np.float32)
    images = l2_normalise(np.array([[1.0, 0.9, 0.0, -1.0], [0.0, 0.0, 0.0, 1.0]], dtype=np.float32))
    table = tag_table(["a", "b"], images, word_embeddings, words, logit_scale=20, top_k=2, min_prob=20,
                      failures={"c": "truncated: cut off"}).to_pylist()
    a, b, c = table
    assert a["tags"] == ["flag", "crowd"] and a["summary"] == "flag, crowd" and a["probs"][0] > a["probs"][1] >= 20
    assert b["tags"] == ["dog"]  # the runner-up is far below 20 percent
    assert c["status"] == "embed_failed" and c["tags"] is None and "truncated" in c["error"]
    strict = tag_table(["a"], images[:1], word_embeddings, words, 20, top_k=1, min_prob=99).to_pylist()
    assert strict[0]["tags"] == [] and strict[0]["status"] == "ok"


def test_the_bundled_vocabulary_loads_and_mistakes_are_named(tmp_path):
    assert "flag" in load_vocabulary("config/vocabulary.yaml")
    (tmp_path / "one.yaml").write_text("- flag\n")
    with pytest.raises(VocabularyError, match="at least two object words"):
        load_vocabulary(tmp_path / "one.yaml")
    (tmp_path / "twice.yaml").write_text("- flag\n- car\n- flag\n")
    with pytest.raises(VocabularyError, match="flag more than once"):
        load_vocabulary(tmp_path / "twice.yaml")
    with pytest.raises(VocabularyError, match="signals.tags.vocabulary: no file"):
        load_vocabulary(tmp_path / "missing.yaml")
