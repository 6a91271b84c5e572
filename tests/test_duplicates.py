"""Near-duplicate groups measured on a corpus with known copies and hard negatives (tests/duplicate_corpus.py)."""

import numpy as np
import pandas as pd
import pytest

from duplicate_corpus import pairwise_precision_recall, write_corpus
from imagecoding.duplicates.fingerprint import region_hashes, thumbnails_array
from imagecoding.duplicates.groups import (
    GROUP_COLUMNS,
    CappedUnionFind,
    Settings,
    duplicate_groups,
    hash_candidates,
)
from imagecoding.manifest import all_image_paths, build_manifest, thumbnail_table


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    truth = write_corpus(root, pictures=16, templates=12, seed=3)
    manifest = build_manifest(all_image_paths(root, ["jpg", "png"]), root)
    return truth, manifest


def groups_of(manifest, settings=Settings(), embeddings=None):
    usable = manifest[manifest["status"] == "ok"].reset_index(drop=True)
    images = usable.assign(first_seen=range(len(usable)))
    groups = duplicate_groups(images, settings, embeddings)
    return usable, groups


def test_the_manifest_decode_keeps_a_thumbnail_of_every_decodable_image(corpus):
    _, manifest = corpus
    table = thumbnail_table(manifest)
    assert len(table) == (manifest["status"] == "ok").sum()
    assert {len(t) for t in table["thumbnail"]} == {32 * 32 + 4 * 4 * 3}  # grey, then colour


def test_groups_find_the_copies_and_keep_templates_apart(corpus):
    truth, manifest = corpus
    usable, groups = groups_of(manifest)
    assert list(groups.columns) == GROUP_COLUMNS
    found = dict(zip(usable["path"], groups["duplicate_group"]))
    precision, recall = pairwise_precision_recall(truth, found)
    print(f"pairwise precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.95
    assert recall >= 0.90
    # every template sharepic without copies stays alone, though its frame matches the others'
    templates = [found[name] for name in truth if name.startswith("template")]
    assert len(set(templates)) == len(templates)


def test_the_representative_is_the_largest_copy_and_groups_carry_their_evidence(corpus):
    truth, manifest = corpus
    usable, groups = groups_of(manifest)
    frame = usable.assign(**groups.drop(columns="image_id"))
    group = frame[frame["path"].str.startswith("picture000")]
    assert group["duplicate_group"].nunique() == 1
    assert (group["group_size"] == len(group)).all()
    representative = frame.set_index("image_id").loc[group["representative"].iloc[0]]
    assert representative["width"] * representative["height"] == (group["width"] * group["height"]).max()
    joined = group[group["image_id"] != group["representative"]]
    assert joined["signal"].str.startswith("hash:").all() and joined["distance"].notna().all()
    alone = frame[frame["group_size"] == 1]
    assert (alone["duplicate_group"] == alone["image_id"]).all() and alone["signal"].isna().all()


def test_a_global_hash_alone_would_miss_crops_and_banners(corpus):
    """The measurement behind three regions: with the whole-picture hash alone, crops and banners fall out."""
    truth, manifest = corpus
    usable = manifest[manifest["status"] == "ok"].reset_index(drop=True)
    hashes = region_hashes(thumbnails_array(usable["thumbnail"]))
    whole_only = hash_candidates({"whole": hashes["whole"]}, max_distance=10, window=len(usable))
    owner = usable["path"].map(truth).to_numpy()
    found = {(a, b) for a, b in zip(whole_only["a"], whole_only["b"]) if owner[a] == owner[b]}
    cropped = [i for i, p in enumerate(usable["path"]) if "_cropped" in p]
    assert sum(any(i in pair for pair in found) for i in cropped) < len(cropped) / 2


def test_embedding_neighbours_are_an_optional_candidate_source(corpus):
    """With the tests' weak model embeddings add nothing the hashes miss; they must not cost precision."""
    truth, manifest = corpus
    usable = manifest[manifest["status"] == "ok"].reset_index(drop=True)
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(len(usable), 16)).astype("float32")
    _, groups = groups_of(manifest, Settings(embedding_neighbours=3), embeddings)
    precision, recall = pairwise_precision_recall(truth, dict(zip(usable["path"], groups["duplicate_group"])))
    assert precision >= 0.95 and recall >= 0.90


def test_the_cap_stops_one_chain_from_swallowing_everything():
    groups = CappedUnionFind(10, cap=4)
    for i in range(9):
        groups.union(i, i + 1)
    sizes = pd.Series([groups.find(i) for i in range(10)]).value_counts()
    assert sizes.max() == 4 and groups.refused > 0


def test_no_image_no_group():
    empty = pd.DataFrame({"image_id": [], "thumbnail": [], "width": [], "height": []})
    assert list(duplicate_groups(empty, Settings()).columns) == GROUP_COLUMNS


def grouped_corpus(groups=60, seed=0):
    """Zero-shot scores of images in groups of 1 to 6 copies; copies share their picture's category."""
    rng = np.random.default_rng(seed)
    rows, membership = [], []
    for g in range(groups):
        category = ["people", "text", "scene"][g % 3]
        for c in range(int(rng.integers(1, 7))):
            image_id = f"g{g:03d}c{c}"
            first = float(rng.uniform(40, 90))
            rows.append({"image_id": image_id, "type": category, "type_prob": first, "type_prob_1": first,
                         "type_prob_2": 100 - first})
            membership.append({"image_id": image_id, "duplicate_group": f"g{g:03d}c0"})
    return pd.DataFrame(rows), pd.DataFrame(membership)


@pytest.mark.parametrize("design", ["stratified", "uncertainty"])
def test_the_sample_draws_groups_one_image_each_with_the_groups_probability(design):
    from imagecoding.validation.sample import design_weights, study_design

    scores, groups = grouped_corpus()
    settings = {"design": design, "sample_size": 15, "uniform_share": 0.5, "seed": 1, "round": 2,
                "min_per_category": 2}
    drawn_design = study_design(settings, "type", scores, groups=groups)
    assert len(drawn_design) == len(scores)  # every image is in the frame, through its group
    drawn = drawn_design[drawn_design["round"] > 0]
    assert drawn["duplicate_group"].is_unique  # at most one image per group
    assert set(drawn["image_id"]) <= set(groups["duplicate_group"])  # the representative stands for its group
    per_group = drawn_design.groupby("duplicate_group")["inclusion_probability"].nunique()
    assert (per_group == 1).all()  # every copy carries its group's probability
    if design == "stratified":  # the group is the unit: probability is the quota over the stratum's groups
        first = drawn_design.drop_duplicates("duplicate_group")
        for _, stratum in first.groupby("stratum"):
            taken = int((stratum["round"] > 0).sum())
            assert stratum["inclusion_probability"].iloc[0] == pytest.approx(taken / len(stratum))
    # a code on a copy is a code for its group: weighted by the group's probability, not outside the sample
    group = drawn["duplicate_group"].iloc[0]
    copy = drawn_design[(drawn_design["duplicate_group"] == group)]["image_id"].iloc[-1]
    weights, outside = design_weights(drawn_design, pd.Index([copy]))
    size = int((drawn_design["duplicate_group"] == group).sum())
    assert not outside and weights[copy] == pytest.approx(size / drawn["inclusion_probability"].iloc[0])
    # so the weights of the drawn groups add up to the corpus's images, as Horvitz-Thompson's should on average
    every = design_weights(drawn_design, pd.Index(drawn["image_id"]))[0]
    assert every.sum() == pytest.approx(len(scores), rel=0.5)


def test_without_groups_the_design_is_unchanged():
    from imagecoding.validation.sample import study_design

    scores, _ = grouped_corpus()
    settings = {"design": "stratified", "sample_size": 15, "uniform_share": 0.5, "seed": 1, "round": 1,
                "min_per_category": 2}
    plain = study_design(settings, "type", scores)
    assert (plain["duplicate_group"] == plain["image_id"]).all() and (plain["round"] > 0).sum() == 15


def test_grouped_folds_stop_copies_from_flattering_the_learned_classifier():
    """Labels carry no signal, only copies: ungrouped folds judge each copy by a model that saw its twin."""
    from imagecoding.learn.probe import out_of_fold

    rng = np.random.default_rng(4)
    pictures, copies = 40, 4
    centres = rng.normal(size=(pictures, 24))
    labels = np.array(["yes", "no"])[rng.integers(0, 2, pictures)]
    X = np.repeat(centres, copies, axis=0) + rng.normal(scale=0.05, size=(pictures * copies, 24))
    y = np.repeat(labels, copies)
    groups = np.repeat([f"picture{i}" for i in range(pictures)], copies)
    classes = np.unique(y)

    def accuracy(probabilities):
        return float((classes[probabilities.argmax(axis=1)] == y).mean())

    ungrouped = accuracy(out_of_fold(X, y, folds=5, seed=0))
    grouped = accuracy(out_of_fold(X, y, folds=5, seed=0, groups=groups))
    print(f"out-of-fold accuracy on labels without signal: ungrouped {ungrouped:.2f}, grouped {grouped:.2f}")
    assert ungrouped > 0.9  # inflation: the copies were learned by heart
    assert grouped < 0.7  # near chance once a picture's copies share one fold


def test_the_picture_unit_counts_each_group_once_per_account():
    """Three reposts of one 'text' picture and two single 'people' pictures: by image text is 60%, by picture 33%."""
    from imagecoding.estimates.prevalence import as_pictures, image_groups, prevalence
    from imagecoding.validation.variables import CodedVariable

    images = ["a1", "a2", "a3", "b", "c"]
    membership = pd.Series(["a1", "a1", "a1", "b", "c"], index=images)
    machine = pd.Series(["text", "text", "text", "people", "people"], index=images)
    links = pd.DataFrame({"post_row": [0, 1, 2, 3, 4], "image_id": images})
    posts = pd.DataFrame({"account": ["x", "x", "y", "x", "y"]})
    groups, _ = image_groups(images, links, posts, "account", None, "month")
    variable = CodedVariable(name="type", values=("people", "text"), methods=("clip",))
    weights = pd.Series(dtype=float)

    def share(table, group):
        row = table[(table["group"] == group) & (table["category"] == "text")].iloc[0]
        return row["naive"], row["n_images"]

    by_image = prevalence({"clip": {"type": machine}}, {}, [variable], groups, weights, 0.95, 30, True)
    assert share(by_image, "all") == (pytest.approx(0.6), 5)
    predictions, gold, pictures, picture_weights = as_pictures({"clip": {"type": machine}}, {}, groups, weights,
                                                               membership)
    by_picture = prevalence(predictions, gold, [variable], pictures, picture_weights, 0.95, 30, True)
    assert share(by_picture, "all") == (pytest.approx(1 / 3), 3)
    # a picture posted by two accounts counts once in each; within account x its two copies count once
    assert share(by_picture, "x") == (pytest.approx(0.5), 2)
    assert share(by_picture, "y") == (pytest.approx(0.5), 2)


def test_the_report_counts_groups_and_names_the_accounts_that_shared_a_picture():
    from imagecoding.report.duplicates import duplicates_view

    merged = pd.DataFrame({
        "image_id": ["a", "a2", "a3", "b", "b2", "c"],
        "duplicate_group": ["a", "a", "a", "b", "b", "c"],
        "group_size": [3, 3, 3, 2, 2, 1],
        "account": ["party", "candidate_1", "candidate_2", "party", "party", "party"],
    })
    view = duplicates_view(merged, "account")
    assert (view["groups"], view["with_copies"], view["images_in_them"]) == (3, 2, 5)
    assert view["largest"][0]["image_ids"][0] == "a" and view["largest"][0]["size"] == 3
    assert view["shared_across_accounts"] == 1 and view["shared"][0]["accounts"] == ["candidate_1", "candidate_2", "party"]
    assert duplicates_view(merged.drop(columns="duplicate_group"), "account") is None
