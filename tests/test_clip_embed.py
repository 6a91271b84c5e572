"""CLIP loading and embedding with a real (tiny) open_clip model, the embedding store, and offline errors."""

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from imagecoding.clip.model import ModelSpec, WeightsUnavailable, input_size, load_clip, weights_key
from imagecoding.clip.embeddings import (
    EmbeddingStore,
    embed_batches,
    encode_phrases,
    shard_count,
    shard_of,
    index_table,
)
from tiny_clip import MODEL_CONFIG, MODEL_NAME


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    spec = ModelSpec(MODEL_NAME, str(tiny_checkpoint), str(MODEL_CONFIG))
    return spec, *load_clip(spec)


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    items = []
    for index in range(7):
        path = tmp_path / f"img{index}.jpg"
        Image.fromarray((rng.random((90 + index, 120, 3)) * 255).astype("uint8")).save(path)
        items.append((f"id{index}", str(path)))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    items.append(("broken", str(tmp_path / "broken.jpg")))
    return items


def run(tiny, items, **options):
    _, model, preprocess, _ = tiny
    ids, rows, failures = [], [], []
    for batch_ids, matrix, failed in embed_batches(model, preprocess, items, batch_size=3, **options):
        ids += batch_ids
        if batch_ids:
            rows.append(matrix)
        failures += failed
    return ids, np.concatenate(rows), dict(failures)


def test_embeddings_are_unit_length_and_match_a_direct_forward_pass(tiny, images):
    _, model, preprocess, _ = tiny
    ids, matrix, failures = run(tiny, images, workers=0)
    assert ids == [f"id{i}" for i in range(7)]
    assert matrix.shape == (7, 32)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1, atol=1e-5)
    with torch.no_grad():
        direct = model.encode_image(preprocess(Image.open(images[2][1]).convert("RGB")).unsqueeze(0))
    direct = torch.nn.functional.normalize(direct, dim=-1).numpy()[0]
    assert np.allclose(matrix[2], direct, atol=1e-5)


def test_a_broken_image_is_reported_not_raised(tiny, images):
    _, _, failures = run(tiny, images, workers=0)
    assert list(failures) == ["broken"]
    assert failures["broken"].startswith(("truncated", "corrupt", "not_an_image"))


def test_worker_processes_give_the_same_embeddings(tiny, images):
    _, single, _ = run(tiny, images, workers=0)
    _, parallel, _ = run(tiny, images, workers=2)
    assert np.allclose(single, parallel, atol=1e-6)


def test_draft_decoding_stays_close_to_full_decoding(tiny, images):
    spec, model, _, _ = tiny
    large = []
    rng = np.random.default_rng(3)
    for index, (image_id, path) in enumerate(images[:4]):
        smooth = np.kron(rng.random((30, 40, 3)), np.ones((16, 16, 1)))  # 480x640, mostly low frequencies
        Image.fromarray((smooth * 255).astype("uint8")).save(path, quality=95)
        large.append((image_id, path))
    _, full, _ = run(tiny, large, workers=0)
    _, draft, _ = run(tiny, large, workers=0, min_side=input_size(model))
    cosine = (full * draft).sum(axis=1)
    assert cosine.min() > 0.99


def test_text_embeddings_are_unit_length(tiny):
    _, model, _, tokenizer = tiny
    phrases = encode_phrases(model, tokenizer, ["a poster", "a crowd at a rally"])
    assert phrases.shape == (2, 32)
    assert np.allclose(np.linalg.norm(phrases, axis=1), 1, atol=1e-5)


def test_store_keeps_embeddings_across_writers(tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    assert store.known_ids() == set()
    first = np.eye(3, dtype=np.float32)
    store.write_embeddings(["a", "b", "c"], first, {"model": "m"})
    store.write_embeddings(["d"], np.ones((1, 3), dtype=np.float32) / np.sqrt(3))
    assert store.known_ids() == {"a", "b", "c", "d"}
    ids, matrix = store.read_embeddings(["d", "b", "zzz"])
    assert ids == ["d", "b"]
    assert np.allclose(matrix[1], [0, 1, 0])
    assert not list(store.folder.glob(".*.tmp"))  # no half-written parts left behind


def test_the_shard_index_keeps_failures_as_rows_and_no_embeddings():
    table = index_table(["a", "b", "c"], {"c": "truncated: cut off"})
    assert table.column("status").to_pylist() == ["ok", "ok", "embed_failed"]
    assert table.column("error").to_pylist() == [None, None, "truncated: cut off"]
    assert table.column_names == ["image_id", "status", "error"]  # embeddings live once, in the store


def test_shards_are_stable_and_cover_everything():
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(1000)]
    assignment = [shard_of(i, 4) for i in ids]
    assert set(assignment) == {0, 1, 2, 3}
    assert assignment == [shard_of(i, 4) for i in ids]


def test_store_key_names_the_checkpoint_by_content(tiny_checkpoint, tmp_path):
    moved = tmp_path / "moved.pt"
    moved.write_bytes(tiny_checkpoint.read_bytes())
    key = weights_key(ModelSpec(MODEL_NAME, str(tiny_checkpoint), str(MODEL_CONFIG)))
    assert key == weights_key(ModelSpec(MODEL_NAME, str(moved), str(MODEL_CONFIG)))
    assert key != weights_key(ModelSpec(MODEL_NAME, str(moved), str(MODEL_CONFIG)), draft=True)
    assert weights_key(ModelSpec("ViT-B-32", "laion2b_s34b_b79k")) == "ViT-B-32__laion2b_s34b_b79k"


def test_offline_download_failure_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable) as raised:
        load_clip(ModelSpec("ViT-B-32", "laion2b_s34b_b79k"), cache_dir=None)
    message = str(raised.value)
    assert "clip.pretrained" in message and "internet" in message and "local" in message


@pytest.mark.parametrize(
    "spec, message",
    [
        (ModelSpec("ViT-B-32", "no_such_tag"), "not a known weights tag"),
        (ModelSpec("No-Such-Net", None), "not an open_clip architecture"),
        (ModelSpec("ViT-B-32", "/nowhere/weights.pt"), "no checkpoint file"),
        (ModelSpec("other-name", None, str(MODEL_CONFIG)), "set clip.model: tiny-clip"),
    ],
)
def test_configuration_mistakes_are_named(spec, message):
    with pytest.raises(WeightsUnavailable, match=message):
        load_clip(spec)


def test_an_unreachable_hub_fails_at_once_instead_of_retrying(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    with pytest.raises(WeightsUnavailable, match="cannot be reached"):
        load_clip(ModelSpec("ViT-B-32", "laion2b_s34b_b79k"))
    assert constants.HF_HUB_OFFLINE  # the cache was still consulted, without network retries


def test_shards_by_image_count_split_rather_than_reshuffle():
    assert [shard_count(n, 20_000) for n in (1, 20_000, 20_001, 60_000, 1_000_000)] == [1, 1, 2, 4, 64]
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(500)]
    for image_id in ids:  # doubling the jobs splits each shard: an image only moves to a child of its shard
        assert shard_of(image_id, 8) % 4 == shard_of(image_id, 4)


KILLED_JOB = """
import sys
import numpy as np
from imagecoding.clip.embeddings import EmbeddingStore, embed_into_store

def batches():
    for number in range(3):
        yield [f"id{number}-{k}" for k in range(4)], np.eye(4, 8, dtype=np.float32), {}
    print("three batches in", flush=True)
    sys.stdin.read()  # stuck mid-run, as a job is when its time limit comes

embed_into_store(batches(), EmbeddingStore(sys.argv[1]), {"model": "tiny"}, flush_every=10**6, flush_seconds=1e-6)
"""


def test_a_killed_embedding_job_keeps_its_commits(tmp_path):
    """Commits by time, not only by count: SIGKILL mid-run (scancel, a time limit) keeps every committed batch."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    scripts = Path(__file__).resolve().parent.parent / "scripts"
    job = subprocess.Popen([sys.executable, "-c", KILLED_JOB, str(tmp_path / "store")], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True, cwd=scripts)
    try:
        assert job.stdout.readline().strip() == "three batches in"
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)
    assert job.returncode == -signal.SIGKILL
    store = EmbeddingStore(tmp_path / "store")
    assert len(store.known_ids()) == 12  # flush_every was never reached: the commits came from flush_seconds
    assert not list((tmp_path / "store").glob("*.tmp*"))  # no half-written part
