"""Paid work survives: `make clean` removes results and keeps the stores; `make clean-stores` lists, then deletes them.

The stores (embeddings, signals, LLM answers) live under store.root; a study from before it has them
inside results/, and the main Snakemake process moves them out once.
"""

import errno
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from imagecoding.config import ConfigError, resolve_stores
from imagecoding.response_cache import ResponseCache
from imagecoding.store_root import move_old_stores, stores_in_results

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"
BIN = Path(sys.executable).parent


def resolved(config: dict) -> tuple[dict, list]:
    validate(config, str(SCHEMA), set_default=True)
    return config, resolve_stores(config)


def paid_cache(path: Path, answers: int = 3, close: bool = True) -> ResponseCache:
    """An LLM cache holding `answers` paid answers of 1 cent each."""
    cache = ResponseCache(path)
    for number in range(answers):
        cache.put(f"key{number}", "gpt-4o-mini", "frames", f"img{number}", "sync", {"answer": number}, 100, 10, 0.01)
    if close:
        cache.close()
    return cache


def answers_in(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:  # closed: an open reader keeps SQLite's log files beside it
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def tree(folder: Path) -> dict[str, str]:
    """Every file under a folder with its content hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def a_study(folder: Path, **config) -> Path:
    """A study folder after a run: results, logs, Snakemake's metadata and the stores under store/."""
    (folder / "images").mkdir(parents=True)
    for path in ("results/clip/image_type.parquet", "logs/manifest.log", "benchmarks/clip_embed.tsv", ".snakemake/metadata/x"):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text("a result")
    part = folder / "store" / "embeddings" / "ViT-B-32__weights" / "part-1.parquet"
    part.parent.mkdir(parents=True)
    part.write_bytes(os.urandom(150_000))
    (folder / "store" / "signals" / "ocr").mkdir(parents=True)
    (folder / "store" / "signals" / "ocr" / "part-1.parquet").write_bytes(os.urandom(2_000))
    paid_cache(folder / "store" / "llm.sqlite")
    (folder / "study.yaml").write_text(yaml.safe_dump({"images": {"root": "images"}, **config}))
    return folder


def make(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-f", str(REPO / "Makefile"), f"BIN={BIN}", *args],
                          cwd=folder, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)


def test_store_keys_left_at_null_live_under_store_root_and_set_ones_win():
    config, defaulted = resolved({"images": {"root": "photos"}})
    assert config["clip"]["store_dir"] == "store/embeddings"
    assert config["signals"]["store_dir"] == "store/signals"
    assert config["llm"]["cache"] == "store/llm.sqlite"
    assert [s.key for s in defaulted] == ["clip.store_dir", "signals.store_dir", "llm.cache"]

    config, defaulted = resolved({"images": {"root": "photos"}, "store": {"root": "/project/stores"},
                                  "llm": {"cache": "/shared/llm.sqlite"}})
    assert config["clip"]["store_dir"] == "/project/stores/embeddings"
    assert config["signals"]["store_dir"] == "/project/stores/signals"
    assert config["llm"]["cache"] == "/shared/llm.sqlite"  # the researcher's own path wins
    assert [s.key for s in defaulted] == ["clip.store_dir", "signals.store_dir"]


def test_the_bundled_config_keeps_every_store_out_of_results():
    config, _ = resolved(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    assert stores_in_results(config) == []
    for path in (config["clip"]["store_dir"], config["signals"]["store_dir"], config["llm"]["cache"]):
        assert path.startswith("store/")


def test_a_store_set_inside_results_is_warned_of_with_the_fix():
    config, _ = resolved({"images": {"root": "photos"}, "clip": {"store_dir": "results/embeddings"},
                          "llm": {"cache": "results/my-cache/llm.sqlite"}})
    warnings = stores_in_results(config)
    assert len(warnings) == 2
    assert "clip.store_dir: 'results/embeddings' is inside results/" in warnings[0]
    assert "set clip.store_dir: null" in warnings[0]
    assert "llm.cache" in warnings[1] and "move it out of results/" in warnings[1]


def test_make_clean_removes_results_and_keeps_every_store(tmp_path):
    study = a_study(tmp_path / "study")
    stores = tree(study / "store")
    cleaned = make(study, "clean")
    assert cleaned.returncode == 0, cleaned.stderr
    for gone in ("results", "logs", "benchmarks", ".snakemake"):
        assert not (study / gone).exists(), gone
    assert tree(study / "store") == stores  # every store file kept, unchanged
    assert answers_in(study / "store" / "llm.sqlite") == 3
    assert "make clean-stores deletes them" in cleaned.stdout


def test_make_clean_refuses_while_results_still_hold_a_store_from_before_store_root(tmp_path):
    study = a_study(tmp_path / "study")
    paid_cache(study / "results" / "cache" / "llm.sqlite")
    cleaned = make(study, "clean")
    assert cleaned.returncode != 0
    assert "results/cache/llm.sqlite is a store" in cleaned.stderr and "Nothing deleted" in cleaned.stderr
    assert answers_in(study / "results" / "cache" / "llm.sqlite") == 3
    assert (study / "results" / "clip" / "image_type.parquet").exists()


def test_make_clean_stores_lists_what_it_deletes_and_deletes_only_when_told(tmp_path):
    study = a_study(tmp_path / "study")
    listed = make(study, "clean-stores", "CONFIG=study.yaml")
    assert listed.returncode != 0  # nobody at a terminal to answer: it lists and asks for YES=1
    assert "Nothing deleted" in listed.stderr and "YES=1" in listed.stderr
    lines = listed.stdout.splitlines()
    listing = {line.split()[2]: line.split()[:2] for line in lines if line.startswith("  ") and "store/" in line}
    assert listing["store/embeddings"] == ["150.0", "KB"]
    assert listing["store/signals"] == ["2.0", "KB"]
    assert set(listing) == {"store/embeddings", "store/signals", "store/llm.sqlite"}
    assert "3 LLM answers, which cost $0.03, are deleted with store/llm.sqlite and will be paid for again" in listed.stdout
    assert answers_in(study / "store" / "llm.sqlite") == 3 and (study / "store" / "embeddings").is_dir()

    deleted = make(study, "clean-stores", "CONFIG=study.yaml", "YES=1")
    assert deleted.returncode == 0, deleted.stderr
    after_command = lambda run: run.stdout.split("\n", 1)[1]  # noqa: E731 (make echoes its command first)
    assert after_command(deleted).startswith(after_command(listed))  # the same listing, before deleting
    assert after_command(deleted).endswith("deleted store/embeddings\ndeleted store/signals\ndeleted store/llm.sqlite\n")
    assert not (study / "store").exists()  # every store, its SQLite companions, and the emptied folder
    assert (study / "results" / "clip" / "image_type.parquet").exists()  # results are not clean-stores' business


def test_make_clean_stores_finds_stores_where_the_configuration_puts_them(tmp_path):
    study = a_study(tmp_path / "study", store={"root": str(tmp_path / "project" / "stores")},
                    clip={"store_dir": str(tmp_path / "shared-embeddings")})
    (tmp_path / "project" / "stores").mkdir(parents=True)
    shutil.move(study / "store" / "llm.sqlite", tmp_path / "project" / "stores" / "llm.sqlite")
    shutil.move(study / "store" / "embeddings", tmp_path / "shared-embeddings")
    deleted = make(study, "clean-stores", "CONFIG=study.yaml", "YES=1")
    assert deleted.returncode == 0, deleted.stderr
    assert f"deleted {tmp_path / 'shared-embeddings'}" in deleted.stdout
    assert f"deleted {tmp_path / 'project' / 'stores' / 'llm.sqlite'}" in deleted.stdout
    assert not (tmp_path / "shared-embeddings").exists() and not (tmp_path / "project" / "stores").exists()
    assert (study / "store" / "signals").is_dir()  # store/ is not this study's store.root: left alone


def test_make_clean_stores_refuses_a_store_that_holds_the_study(tmp_path):
    study = a_study(tmp_path / "study", clip={"store_dir": "."})
    refused = make(study, "clean-stores", "CONFIG=study.yaml", "YES=1")
    assert refused.returncode != 0
    assert "clip.store_dir: '.' holds the working directory" in refused.stderr
    assert (study / "store" / "llm.sqlite").exists() and (study / "results").exists()


def old_study(folder: Path) -> Path:
    """A study run before store.root: its stores inside results/, the LLM cache with answers still in its log."""
    (folder / "results" / "embeddings" / "ViT-B-32__weights").mkdir(parents=True)
    (folder / "results" / "embeddings" / "ViT-B-32__weights" / "part-1.parquet").write_bytes(b"embeddings")
    (folder / "results" / "cache" / "signals" / "ocr").mkdir(parents=True)
    (folder / "results" / "cache" / "signals" / "ocr" / "part-1.parquet").write_bytes(b"ocr")
    return folder


def test_an_old_studys_stores_move_out_of_results_once(tmp_path, monkeypatch):
    monkeypatch.chdir(old_study(tmp_path))
    cache = paid_cache(tmp_path / "results" / "cache" / "llm.sqlite", close=False)  # as left by a killed run
    assert (tmp_path / "results" / "cache" / "llm.sqlite-wal").stat().st_size > 0  # answers not yet in the main file
    config, defaulted = resolved({"images": {"root": "."}})
    said = []
    move_old_stores(config, defaulted, said.append)
    cache.close()
    assert said == [f"{key}: moved {old} to {new} (stores live under store.root now, where `make clean` leaves them)"
                    for key, old, new in [("clip.store_dir", "results/embeddings", "store/embeddings"),
                                          ("signals.store_dir", "results/cache/signals", "store/signals"),
                                          ("llm.cache", "results/cache/llm.sqlite", "store/llm.sqlite")]]
    assert (tmp_path / "store" / "embeddings" / "ViT-B-32__weights" / "part-1.parquet").read_bytes() == b"embeddings"
    assert (tmp_path / "store" / "signals" / "ocr" / "part-1.parquet").read_bytes() == b"ocr"
    assert answers_in(tmp_path / "store" / "llm.sqlite") == 3  # every answer, the logged ones too
    assert not list((tmp_path / "results").rglob("*.*"))  # nothing left behind for make clean to delete

    said.clear()
    move_old_stores(config, defaulted, said.append)
    assert said == []  # once


def test_set_store_paths_and_occupied_new_places_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(old_study(tmp_path))
    (tmp_path / "store" / "signals" / "ocr").mkdir(parents=True)
    (tmp_path / "store" / "signals" / "ocr" / "part-9.parquet").write_bytes(b"newer")
    config, defaulted = resolved({"images": {"root": "."}, "clip": {"store_dir": "results/embeddings"}})
    said = []
    move_old_stores(config, defaulted, said.append)
    assert (tmp_path / "results" / "embeddings").is_dir()  # the researcher's own path: not moved
    assert (tmp_path / "results" / "cache" / "signals" / "ocr" / "part-1.parquet").exists()
    assert not (tmp_path / "store" / "signals" / "ocr" / "part-1.parquet").exists()
    assert len(said) == 1 and "results/cache/signals (from before store.root) was not moved" in said[0]


def test_a_store_that_cannot_be_renamed_stops_the_run_with_the_command_to_move_it(tmp_path, monkeypatch):
    monkeypatch.chdir(old_study(tmp_path))
    project = tmp_path / "project" / "store"  # a project drive
    config, defaulted = resolved({"images": {"root": "."}, "store": {"root": str(project)}})

    def across_file_systems(old, new):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "rename", across_file_systems)
    with pytest.raises(ConfigError) as stopped:
        move_old_stores(config, defaulted, print)
    message = str(stopped.value)
    assert f"clip.store_dir: could not move results/embeddings to {project}/embeddings" in message
    assert f"`mkdir -p {project} && mv results/embeddings {project}/embeddings`" in message
    assert (tmp_path / "results" / "embeddings" / "ViT-B-32__weights" / "part-1.parquet").exists()  # nothing copied or lost
