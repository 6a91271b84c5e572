"""End to end: reposts added to the example become one group, merged.csv carries it, and a second run runs nothing."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image, ImageDraw

from workflow_helpers import planned_jobs, snakemake

pytestmark = pytest.mark.workflow  # finished_run comes from conftest.py, shared with test_workflow.py

ORIGINAL = "red_list/poster_2.jpg"


@pytest.fixture(scope="module")
def reposted(finished_run, tmp_path_factory) -> Path:
    """A copy of the example run with three reposts of one poster: re-encoded small, cropped, bannered."""
    workdir = tmp_path_factory.mktemp("reposted") / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    picture = Image.open(workdir / "images" / ORIGINAL).convert("RGB")
    width, height = picture.size
    folder = workdir / "images" / "reposts"
    folder.mkdir()
    picture.resize((width // 2, height // 2)).save(folder / "small.jpg", quality=70)
    dx, dy = round(width * 0.07), round(height * 0.07)
    picture.crop((dx, dy, width - dx, height - dy)).save(folder / "cropped.jpg", quality=85)
    bannered = picture.copy()
    ImageDraw.Draw(bannered).rectangle([0, round(height * 0.88), width, height], fill=(20, 20, 20))
    bannered.save(folder / "bannered.png")
    snakemake(workdir)
    return workdir


def test_the_reposts_and_their_original_are_one_group(reposted):
    manifest = pd.read_parquet(reposted / "results" / "manifest.parquet")
    groups = pd.read_parquet(reposted / "results" / "duplicates" / "groups.parquet")
    decodable = set(manifest.loc[manifest["status"] == "ok", "image_id"])
    assert set(groups["image_id"]) == decodable  # every decodable image has a group
    by_path = manifest.set_index("path")["image_id"]
    group_of = groups.set_index("image_id")["duplicate_group"]
    copies = [ORIGINAL, "reposts/small.jpg", "reposts/cropped.jpg", "reposts/bannered.png"]
    assert group_of[by_path[copies]].nunique() == 1
    assert group_of[by_path[ORIGINAL]] == by_path[ORIGINAL]  # the largest copy represents the group


def test_merged_csv_carries_the_group_and_the_sample_draws_one_image_per_group(reposted):
    merged = pd.read_csv(reposted / "results" / "merged.csv")
    assert {"duplicate_group", "group_size"} <= set(merged.columns)
    assert merged.loc[merged["path"].str.startswith("reposts/"), "group_size"].eq(4).all()
    design = pd.read_parquet(reposted / "results" / "validation" / "design.parquet")
    assert design.loc[design["round"] > 0, "duplicate_group"].is_unique


def test_the_report_shows_the_reposted_picture(reposted):
    html = (reposted / "results" / "report" / "index.html").read_text()
    assert 'id="duplicates"' in html and "4 copies" in html and "reposts/cropped.jpg" in html


def test_a_second_run_runs_nothing(reposted):
    assert planned_jobs(reposted) == {}
