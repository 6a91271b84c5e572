"""The per-image part store that embeddings and signals keep across runs."""

import pyarrow as pa

from imagecoding.store import Committer, PartStore


def rows(ids, value):
    return pa.table({"image_id": ids, "text": [f"{value}-{i}" for i in ids], "n": list(range(len(ids)))})


def test_reads_follow_the_requested_order_and_the_first_stored_row_wins(tmp_path):
    store = PartStore(tmp_path / "s")
    assert store.read(["a"]).num_rows == 0
    store.write(rows(["a", "b"], "first"))
    store.write(rows(["b", "c"], "second"))  # a second run raced the first on "b"
    table = store.read(["c", "zzz", "b", "a"])
    assert table.column("image_id").to_pylist() == ["c", "b", "a"]
    assert table.column("text").to_pylist() == ["second-c", "first-b", "first-a"]
    assert store.read(["a"], columns=["n"]).column_names == ["image_id", "n"]
    assert store.known_ids() == {"a", "b", "c"}


def test_the_committer_commits_by_count_by_time_and_on_errors(tmp_path):
    store = PartStore(tmp_path / "s")
    with Committer(store, every=3) as committer:
        committer.add(rows(["a", "b"], "x"))
        assert store.parts() == []
        committer.add(rows(["c"], "x"))
        assert len(store.parts()) == 1  # three rows: committed
        committer.add(rows(["d"], "x"))
    assert store.known_ids() == {"a", "b", "c", "d"}  # the rest on leaving

    timed = Committer(PartStore(tmp_path / "t"), every=10_000, seconds=0)  # every add is overdue
    timed.add(rows(["a"], "x"))
    timed.add(rows(["b"], "x"))
    assert len(timed.store.parts()) == 2  # a slow job commits by time, not only by count

    try:
        with Committer(PartStore(tmp_path / "u"), every=100) as committer:
            committer.add(rows(["a"], "x"))
            raise RuntimeError("the model failed on the next batch")
    except RuntimeError:
        pass
    assert PartStore(tmp_path / "u").known_ids() == {"a"}  # what was done before the error is kept


def test_compaction_keeps_each_key_once_and_reads_stay_the_same(tmp_path):
    store = PartStore(tmp_path / "s")
    for number in range(5):  # two runs on one store both stored "b" and "c"
        store.write(rows(["a", "b", "c"][number % 2:] + [f"x{number}"], f"run{number}"))
    wanted = ["a", "b", "c", "x0", "x1", "x2", "x3", "x4"]
    before = store.read(wanted).to_pylist()
    parts, after, dropped = store.compact(rows_per_part=4)
    assert (parts, after, dropped) == (5, 2, 10) and len(store.parts()) == 2  # a x3, b x5, c x5 stored
    assert store.read(wanted).to_pylist() == before  # the first stored row still wins
    assert sorted(store.known_ids()) == sorted(wanted) and store.compact() == (2, 1, 0)
