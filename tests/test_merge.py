"""Merging: nothing disappears, whatever the posts table and the folder disagree on."""

import pandas as pd
import pytest

from imagecoding.merge import merge_posts, per_file_results
from imagecoding.posts import PostsTableError, display_path, post_image_links, read_posts

MANIFEST = pd.DataFrame(
    {
        "image_id": ["h1", "h2", "h1", None, "h4"],
        "path": ["a.jpg", "b.jpg", "a_copy.jpg", "gone.jpg", "orphan.jpg"],
        "status": ["ok", "ok", "ok", "missing", "ok"],
    }
)
SCORES = pd.DataFrame({"image_id": ["h1", "h2", "h4"], "kind": ["Poster", "Rally", "Portrait"]})
POSTS = pd.DataFrame(
    {
        "post_id": ["p1", "p2", "p3", "p4", "p5"],
        "account": ["x", "x", "y", "y", "z"],
        "image": ["a.jpg", "b.jpg;a_copy.jpg", "gone.jpg", "", "a.jpg"],
    }
)


@pytest.fixture
def merged():
    files = per_file_results(MANIFEST, [SCORES])
    return merge_posts(files, POSTS, "image", "post_id", root="/data", separator=";")


def test_a_post_with_several_images_gives_a_row_per_image(merged):
    rows = merged[merged["post_id"] == "p2"]
    assert list(rows["path"]) == ["b.jpg", "a_copy.jpg"]
    assert list(rows["kind"]) == ["Rally", "Poster"]


def test_a_post_whose_image_is_missing_is_kept_with_the_status(merged):
    row = merged[merged["post_id"] == "p3"].iloc[0]
    assert row["status"] == "missing" and pd.isna(row["kind"])


def test_a_post_naming_no_image_is_kept(merged):
    row = merged[merged["post_id"] == "p4"].iloc[0]
    assert row["has_post"] and pd.isna(row["path"])


def test_images_without_a_post_are_appended(merged):
    orphans = merged[~merged["has_post"]]
    assert list(orphans["path"]) == ["orphan.jpg"]
    assert orphans.iloc[0]["kind"] == "Portrait"
    assert orphans["post_id"].isna().all()


def test_identical_images_in_two_posts_get_the_same_codes(merged):
    assert set(merged.loc[merged["image_id"] == "h1", "kind"]) == {"Poster"}
    assert len(merged) == 6 + 1  # six post-image rows, one orphan


def test_without_posts_the_manifest_is_the_table():
    files = per_file_results(MANIFEST, [SCORES])
    merged = merge_posts(files, None)
    assert len(merged) == len(MANIFEST) and not merged["has_post"].any()


def test_post_columns_that_clash_with_result_columns_are_kept_apart():
    posts = POSTS.assign(status=["draft"] * 5)
    merged = merge_posts(per_file_results(MANIFEST, [SCORES]), posts, "image", "post_id", "/data", ";")
    assert {"status", "image_status"} <= set(merged.columns)
    assert merged.loc[merged["post_id"] == "p3", "image_status"].iloc[0] == "missing"


def test_posts_name_images_relative_to_the_root_or_absolutely(tmp_path):
    root = tmp_path / "images"
    assert display_path("sub/x.jpg", root) == "sub/x.jpg"
    assert display_path(str(root / "sub" / "x.jpg"), root) == "sub/x.jpg"
    assert display_path("/elsewhere/x.jpg", root) == "/elsewhere/x.jpg"
    assert display_path("../x.jpg", root) == (tmp_path / "x.jpg").as_posix()


def test_a_wrong_column_name_is_explained():
    with pytest.raises(PostsTableError, match="posts.image_column: the posts table has no column 'picture'"):
        post_image_links(POSTS, "picture", None, "/data")


def test_posts_tables_are_read_from_csv_and_parquet(tmp_path):
    POSTS.to_parquet(tmp_path / "posts.parquet")
    POSTS.to_csv(tmp_path / "posts.csv", index=False)
    assert read_posts(tmp_path / "posts.parquet")["image"].tolist() == POSTS["image"].tolist()
    assert read_posts(tmp_path / "posts.csv")["image"].tolist() == POSTS["image"].tolist()
    (tmp_path / "posts.xlsx").write_text("")
    with pytest.raises(PostsTableError, match="neither CSV"):
        read_posts(tmp_path / "posts.xlsx")


def test_posts_tables_written_with_semicolons_or_tabs_are_read(tmp_path):
    (tmp_path / "german.csv").write_text("post_id;image_path;caption\np1;a.jpg;Wählt am Sonntag, bitte!\n", encoding="utf-8")
    (tmp_path / "tabs.txt").write_text("post_id\timage_path\np1\ta.jpg\n")
    for name in ("german.csv", "tabs.txt"):
        posts = read_posts(tmp_path / name)
        assert list(posts.columns[:2]) == ["post_id", "image_path"] and posts.loc[0, "image_path"] == "a.jpg"
    assert read_posts(tmp_path / "german.csv").loc[0, "caption"] == "Wählt am Sonntag, bitte!"
    with pytest.raises(PostsTableError, match="no column 'image'. Its columns are: post_id, image_path, caption"):
        post_image_links(read_posts(tmp_path / "german.csv"), "image", None, tmp_path)
