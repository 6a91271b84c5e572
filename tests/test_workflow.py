"""End to end: Snakemake runs the whole core workflow on the bundled example with a tiny CLIP model.

Re-run behaviour is checked through Snakemake's own dry-run output, and through what the embedding
step logs and writes to its store.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from imagecoding.clip.embeddings import shard_count
from workflow_helpers import EXTENSIONS, REPO, SNAKEMAKE, planned_jobs, prepare_workdir, snakemake, write_config

pytestmark = pytest.mark.workflow  # finished_run comes from conftest.py, shared with test_labelstudio.py


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy, symlinks=True)  # keeps mtimes, metadata and the store
    return copy


@pytest.mark.smoke
def test_every_file_is_accounted_for(finished_run):
    manifest = pd.read_parquet(finished_run / "results" / "manifest.parquet")
    on_disk = {
        p.relative_to(finished_run / "images").as_posix()
        for p in (finished_run / "images").rglob("*")
        if p.is_file() and p.suffix.lower() in EXTENSIONS
    }
    assert on_disk <= set(manifest["path"])
    assert set(manifest["path"]) - on_disk == {"green_town/missing.jpg"}  # named by a post, not on disk
    statuses = manifest.set_index("path")["status"]
    assert statuses["blue_party/truncated.jpg"] == "truncated"
    assert statuses["green_town/empty.png"] == "empty"
    assert statuses["red_list/huge.png"] == "too_large"
    assert statuses["red_list/not_an_image.jpg"] == "not_an_image"
    assert (statuses == "ok").sum() == len(on_disk) - 4


@pytest.mark.smoke
def test_every_decodable_image_is_scored_once(finished_run):
    manifest = pd.read_parquet(finished_run / "results" / "manifest.parquet")
    scores = pd.read_parquet(finished_run / "results" / "clip" / "image_type.parquet")
    assert set(scores["image_id"]) == set(manifest.loc[manifest["status"] == "ok", "image_id"])
    assert scores["image_id"].is_unique
    assert scores["image_type_prob"].between(0, 100).all()
    assert (scores["image_type_prob_1"] >= scores["image_type_prob_2"]).all()
    categories = set(yaml.safe_load((finished_run / "schemes" / "image_types.yaml").read_text()))
    assert set(scores["image_type"]) <= categories


@pytest.mark.smoke
def test_posts_and_images_are_merged_without_losses(finished_run):
    merged = pd.read_parquet(finished_run / "results" / "merged.parquet")
    csv = pd.read_csv(finished_run / "results" / "merged.csv")
    posts = pd.read_csv(finished_run / "posts.csv", keep_default_na=False)
    assert len(csv) == len(merged)
    assert set(posts["post_id"]) == set(merged["post_id"].dropna())
    two = merged[merged["post_id"] == posts.loc[posts["caption"] == "Two pictures", "post_id"].item()]
    assert len(two) == 2 and two["image_type"].notna().all()
    lost = merged[merged["path"] == "green_town/missing.jpg"]
    assert lost["status"].tolist() == ["missing"]
    orphans = set(merged.loc[~merged["has_post"], "path"])
    assert {"red_list/cat.jpg", "blue_party/sky.jpg"} <= orphans


@pytest.mark.smoke
def test_the_report_is_a_self_contained_folder(finished_run):
    folder = finished_run / "results" / "report"
    index = (folder / "index.html").read_text()
    for needle in ["Collage", "Per account", "green_town", "truncated", "Provenance", "tiny-clip"]:
        assert needle in index
    # nothing is loaded from elsewhere (the provenance may mention endpoints as text, never as a link)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", index)
    thumbs = list((folder / "thumbs").glob("*.jpg"))
    assert thumbs
    for thumb in thumbs:
        with Image.open(thumb) as image:
            assert max(image.size) <= 256
            assert not image.getexif()
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["clip"]["weights_sha256"]
    assert provenance["schemes"]["image_type"]["sha256"]
    assert (folder / "check.html").exists()


@pytest.mark.smoke
def test_a_second_run_has_nothing_to_do(finished_run):
    assert planned_jobs(finished_run) == {}


def test_editing_a_scheme_rescores_without_embedding(run_copy):
    scheme = run_copy / "schemes" / "image_types.yaml"
    scheme.write_text(scheme.read_text() + "  - a photo of a cat sitting on a sofa\n")
    assert planned_jobs(run_copy) == {"clip_score": 1, "validation_design": 1, "validation_export": 1, "estimates": 1, "merge": 1,
                                      "report": 1, "all": 1}
    image_parts = lambda: sorted(p for p in (run_copy / "store" / "embeddings").rglob("part-*.parquet") if "__phrases" not in str(p))  # noqa: E731
    parts_before = image_parts()
    embed_log = (run_copy / "logs" / "clip" / "embed_0-of-1.log").read_text()
    snakemake(run_copy)
    assert image_parts() == parts_before
    assert (run_copy / "logs" / "clip" / "embed_0-of-1.log").read_text() == embed_log
    assert "1 encoded now" in (run_copy / "logs" / "clip" / "score_image_type.log").read_text()  # only the new phrase


def test_adding_ten_images_embeds_only_those_ten(run_copy):
    rng = np.random.default_rng(42)
    for index in range(10):
        pixels = (rng.random((60, 80, 3)) * 255).astype("uint8")
        Image.fromarray(pixels).save(run_copy / "images" / "blue_party" / f"new_{index}.png")
    jobs = planned_jobs(run_copy)
    assert jobs["manifest"] == 1 and jobs["clip_embed"] == 1
    parts_before = set((run_copy / "store" / "embeddings").rglob("part-*.parquet"))
    snakemake(run_copy)
    new_parts = set((run_copy / "store" / "embeddings").rglob("part-*.parquet")) - parts_before
    assert sum(len(pd.read_parquet(p)) for p in new_parts) == 10
    assert "already in the store" in (run_copy / "logs" / "clip" / "embed_0-of-1.log").read_text()
    assert "10 to embed" in (run_copy / "logs" / "clip" / "embed_0-of-1.log").read_text()
    manifest_log = (run_copy / "logs" / "manifest.log").read_text()
    assert "read 11 files, reused 33 unchanged" in manifest_log  # ten new, and the missing one looked for again
    scores = pd.read_parquet(run_copy / "results" / "clip" / "image_type.parquet")
    manifest = pd.read_parquet(run_copy / "results" / "manifest.parquet")
    assert set(scores["image_id"]) == set(manifest.loc[manifest["status"] == "ok", "image_id"])


def test_sharded_embedding_gives_the_same_scores(run_copy):
    before = pd.read_parquet(run_copy / "results" / "clip" / "image_type.parquet").set_index("image_id")
    shutil.rmtree(run_copy / "store" / "embeddings")  # force real embedding in every shard
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    config["clip"]["shard_size"] = 10  # jobs by image count: 38 paths -> 4 -> 4 jobs (a power of two)
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    paths = len(pd.read_parquet(run_copy / "results" / "manifest.parquet"))
    assert planned_jobs(run_copy)["clip_embed"] == shard_count(paths, 10) == 4
    snakemake(run_copy)
    after = pd.read_parquet(run_copy / "results" / "clip" / "image_type.parquet").set_index("image_id")
    after = after.loc[before.index]
    assert (after["image_type"] == before["image_type"]).all()
    assert np.allclose(after["image_type_prob"], before["image_type_prob"], atol=1e-3)
    image_parts = [p for p in (run_copy / "store" / "embeddings").rglob("part-*.parquet") if "__phrases" not in str(p)]
    assert len(image_parts) == 4  # one per shard
    snakemake(run_copy, "compact")
    compacted = [p for p in (run_copy / "store" / "embeddings").rglob("part-*.parquet") if "__phrases" not in str(p)]
    assert len(compacted) == 1 and "4 parts -> 1" in (run_copy / "logs" / "compact.log").read_text()
    assert planned_jobs(run_copy) == {}  # compaction changes no result


def test_after_make_clean_the_next_run_embeds_nothing(run_copy):
    before = pd.read_parquet(run_copy / "results" / "clip" / "image_type.parquet").set_index("image_id")
    cleaned = subprocess.run(["make", "-f", str(REPO / "Makefile"), "clean"], cwd=run_copy, capture_output=True, text=True)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (run_copy / "results").exists() and (run_copy / "store" / "embeddings").is_dir()
    snakemake(run_copy)
    embed_log = (run_copy / "logs" / "clip" / "embed_0-of-1.log").read_text()
    assert re.search(r"already in the store store/embeddings/\S+, 0 to embed", embed_log), embed_log
    assert "0 encoded now" in (run_copy / "logs" / "clip" / "score_image_type.log").read_text()  # phrases kept too
    after = pd.read_parquet(run_copy / "results" / "clip" / "image_type.parquet").set_index("image_id")
    assert (after.loc[before.index, "image_type"] == before["image_type"]).all()


def test_a_study_from_before_store_root_has_its_stores_moved_and_nothing_to_redo(run_copy):
    (run_copy / "results" / "cache").mkdir(exist_ok=True)
    shutil.move(run_copy / "store" / "embeddings", run_copy / "results" / "embeddings")  # where they used to live
    result = snakemake(run_copy, "--dry-run")
    assert "clip.store_dir: moved results/embeddings to store/embeddings" in result.stderr
    assert not (run_copy / "results" / "embeddings").exists()
    assert planned_jobs(run_copy) == {}  # the run is as complete as before the move
    assert "moved" not in snakemake(run_copy, "--dry-run").stderr  # once


def store_files(run_copy) -> dict[str, str]:
    """Every file of every embedding store, with its content hash."""
    import hashlib

    root = run_copy / "store" / "embeddings"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_a_precision_or_backend_change_embeds_into_a_new_store_and_leaves_the_old_one_as_it_was(run_copy, tmp_path):
    before = store_files(run_copy)
    before_scores = tmp_path / "fp32_scores.parquet"
    shutil.copy(run_copy / "results" / "clip" / "image_type.parquet", before_scores)
    fp32_key = json.loads((run_copy / "results" / "clip" / "weights.json").read_text())["store_key"]
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    for mode in ("bf16", "auto"):
        config["clip"]["precision"] = mode
        (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
        assert {"clip_weights", "clip_embed", "clip_score"} <= set(planned_jobs(run_copy))
        snakemake(run_copy)
        weights = json.loads((run_copy / "results" / "clip" / "weights.json").read_text())
        after = store_files(run_copy)
        assert {k: v for k, v in after.items() if k in before} == before  # the fp32 store is untouched
        if mode == "bf16":
            assert weights["store_key"] == fp32_key + "__bf16"
            assert any(k.startswith(weights["store_key"] + "/") and k.endswith(".parquet") for k in after)
            scores = pd.read_parquet(run_copy / "results" / "clip" / "image_type.parquet")
            assert len(scores) and scores["image_type"].notna().all()
    # auto: the probe's choice, its rates and cosines in weights.json, cached beside the stores
    probe = weights["precision_probe"]
    assert weights["precision_requested"] == "auto" and weights["precision"] == probe["chosen"]
    assert weights["store_key"] == fp32_key + ("" if probe["chosen"] == "fp32" else f"__{probe['chosen']}")
    assert {"fp32", "int8"} <= set(probe["results"]) and (run_copy / probe["path"]).is_file()
    assert "clip.precision auto chose" in (run_copy / "logs" / "clip" / "weights.log").read_text()

    # The other backend: OpenVINO, exact, in a store of its own, the same categories as torch's fp32.
    config["clip"].update(precision="fp32", backend="openvino")
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(run_copy)
    weights = json.loads((run_copy / "results" / "clip" / "weights.json").read_text())
    assert weights["backend"] == "openvino" and weights["store_key"] == fp32_key + "__openvino"
    assert {k: v for k, v in store_files(run_copy).items() if k in before} == before
    assert "(openvino, fp32)" in (run_copy / "logs" / "clip" / "embed_0-of-1.log").read_text()
    scores = pd.read_parquet(run_copy / "results" / "clip" / "image_type.parquet").set_index("image_id")
    exact = pd.read_parquet(before_scores).set_index("image_id").loc[scores.index]
    assert (scores["image_type"] == exact["image_type"]).all()
    assert np.allclose(scores["image_type_prob"], exact["image_type_prob"], atol=0.01)


def test_snakemakes_own_report_archive_builds(run_copy):
    snakemake(run_copy, "--report", "report.zip")
    assert (run_copy / "report.zip").stat().st_size > 10_000


def test_without_internet_the_default_model_stops_with_advice(run_copy):
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    for key in ("model_config", "pretrained", "model"):
        config["clip"].pop(key)  # back to the defaults: ViT-B-32 with downloaded weights
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(run_copy, check=False)
    assert result.returncode != 0
    log = (run_copy / "logs" / "clip" / "weights.log").read_text()
    assert "clip.pretrained" in log and "internet" in log
    assert "internet" in result.stdout + result.stderr  # the profile shows failed logs on the terminal
    assert "rule clip_embed" not in result.stdout + result.stderr  # stopped before any embedding


@pytest.mark.smoke
def test_a_wrong_key_stops_before_any_job(run_copy):
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    config["clip"]["batchsize"] = 8
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(run_copy, check=False)
    assert result.returncode != 0
    assert "clip.batchsize: unknown key" in result.stdout + result.stderr


def test_lint_and_format_are_clean():
    lint = subprocess.run([str(SNAKEMAKE), "--lint"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    snakefmt = Path(sys.executable).parent / "snakefmt"
    formatting = subprocess.run(
        [str(snakefmt), "--check", "Snakefile", "rules"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert formatting.returncode == 0, formatting.stderr


def test_a_studys_own_configuration_stands_alone(tmp_path, tiny_checkpoint):
    """Nothing of config/config.yaml (the example's posts, its scheme) leaks into a study's own run."""
    from tiny_clip import MODEL_CONFIG, MODEL_NAME

    (tmp_path / "photos").mkdir()
    for index in range(3):
        Image.new("RGB", (40, 30), (index * 80, 10, 10)).save(tmp_path / "photos" / f"p{index}.jpg")
    (tmp_path / "mood.yaml").write_text("Calm: [a calm scene]\nBusy: [a busy scene]\n")
    config = {"images": {"root": "photos"}, "clip": {"schemes": {"mood": "mood.yaml"}, "model": MODEL_NAME,
              "model_config": str(MODEL_CONFIG), "pretrained": str(tiny_checkpoint)}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    dry = snakemake(tmp_path, "--dry-run").stdout
    assert "scheme=mood" in dry and "image_type" not in dry
    snakemake(tmp_path, "results/manifest.parquet")
    manifest = pd.read_parquet(tmp_path / "results" / "manifest.parquet")
    assert sorted(manifest["path"]) == ["p0.jpg", "p1.jpg", "p2.jpg"]  # no example post's "missing" image


def test_a_broken_scheme_stops_the_dry_run_before_any_job(run_copy):
    scheme = run_copy / "schemes" / "image_types.yaml"
    scheme.write_text(scheme.read_text() + "Empty category: []\n")
    result = snakemake(run_copy, "--dry-run", check=False)
    assert result.returncode != 0
    assert "category 'Empty category' needs a non-empty list of phrases" in result.stdout + result.stderr
