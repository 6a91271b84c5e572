"""The manifest accounts for every file: odd but valid images are ok, broken ones are rows with reasons."""

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imagecoding.images import load_rgb
from imagecoding.manifest import (
    MANIFEST_COLUMNS,
    all_image_paths,
    build_manifest,
    configured_image_paths,
    find_images,
    listing_fingerprint,
    scan_images,
    manifest_table,
)


def photo(width=120, height=80, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype("uint8"))


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    photo().save(root / "plain.jpg")
    (root / "copy.jpg").write_bytes((root / "plain.jpg").read_bytes())
    photo(seed=1).convert("CMYK").save(root / "cmyk.jpg")
    photo(seed=2).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "palette.png")
    Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 20).astype("uint16")).save(root / "grey16.png")
    photo(seed=3).convert("LA").save(root / "grey_alpha.png")
    frames = [photo(seed=s) for s in (4, 5)]
    frames[0].save(root / "sub" / "animated.gif", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate it to portrait
    photo(120, 80, seed=6).save(root / "rotated.jpg", exif=exif.tobytes())
    photo(seed=7).save(root / "sub" / "SHOUTING.JPG")
    photo(seed=8).save(root / "modern.webp")
    payload = jpeg_bytes(photo(400, 300, seed=9))
    (root / "truncated.jpg").write_bytes(payload[: len(payload) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "text.jpg").write_text("not an image")
    bomb = io.BytesIO()
    Image.new("1", (12000, 10000)).save(bomb, "PNG")
    (root / "bomb.png").write_bytes(bomb.getvalue())
    (root / "notes.txt").write_text("not an image extension: ignored")
    return root


EXTENSIONS = ["jpg", "jpeg", "png", "gif", "webp"]


def manifest_of(root, **options) -> pd.DataFrame:
    paths = all_image_paths(root, EXTENSIONS, options.pop("post_paths", []))
    return build_manifest(paths, root, **options).set_index("path")


def test_every_configured_file_is_a_row_with_the_public_columns(folder):
    frame = manifest_of(folder)
    assert "notes.txt" not in frame.index
    assert "sub/SHOUTING.JPG" in frame.index  # extensions match case-insensitively
    assert len(frame) == 14
    assert list(manifest_table(frame.reset_index()).columns) == MANIFEST_COLUMNS


def test_unusual_but_valid_images_are_ok(folder):
    frame = manifest_of(folder)
    for path in ["cmyk.jpg", "palette.png", "grey16.png", "grey_alpha.png", "sub/animated.gif", "modern.webp"]:
        assert frame.loc[path, "status"] == "ok", (path, frame.loc[path, "error"])
        assert load_rgb(folder / path).mode == "RGB"


def test_exif_orientation_is_applied_to_size_and_pixels(folder):
    row = manifest_of(folder).loc["rotated.jpg"]
    assert (row["width"], row["height"]) == (80, 120)
    assert load_rgb(folder / "rotated.jpg").size == (80, 120)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(folder):
    values = np.asarray(load_rgb(folder / "grey16.png"))
    assert values.min() < 50 and values.max() > 200


@pytest.mark.parametrize(
    "path, status",
    [
        ("truncated.jpg", "truncated"),
        ("empty.png", "empty"),
        ("text.jpg", "not_an_image"),
        ("bomb.png", "too_large"),
    ],
)
def test_broken_files_are_rows_with_a_reason(folder, path, status):
    row = manifest_of(folder, max_pixels=50_000_000).loc[path]
    assert row["status"] == status
    assert isinstance(row["error"], str) and row["error"]


def test_the_pixel_limit_is_configurable(folder):
    frame = manifest_of(folder, max_pixels=5_000)
    assert frame.loc["plain.jpg", "status"] == "too_large"  # 9,600 pixels: between 1x and 2x the limit
    assert frame.loc["grey16.png", "status"] == "ok"  # 3,072 pixels


def test_identical_bytes_share_one_image_id_and_ids_are_sha256(folder):
    import hashlib

    frame = manifest_of(folder)
    assert frame.loc["plain.jpg", "image_id"] == frame.loc["copy.jpg", "image_id"]
    assert frame.loc["plain.jpg", "image_id"] == hashlib.sha256((folder / "plain.jpg").read_bytes()).hexdigest()
    assert frame["image_id"].nunique() == len(frame) - 1


def test_images_named_by_posts_in_listed_folders_and_missing_ones_are_included(folder, tmp_path):
    (tmp_path / "more").mkdir()
    elsewhere = tmp_path / "more" / "elsewhere.jpg"
    photo(seed=11).save(elsewhere)
    frame = manifest_of(folder, post_paths=[str(elsewhere), "gone/missing.jpg"], extra_roots=[str(tmp_path / "more")])
    assert frame.loc[elsewhere.as_posix(), "status"] == "ok"  # absolute paths work in images.extra_roots
    assert frame.loc["gone/missing.jpg", "status"] == "missing"
    assert pd.isna(frame.loc["gone/missing.jpg", "image_id"])


def test_paths_leading_outside_the_allowed_folders_are_never_opened(folder, tmp_path, monkeypatch):
    secret = tmp_path / "secret.jpg"
    photo(seed=12).save(secret)
    (folder / "sub" / "link.jpg").symlink_to(secret)  # a symlink inside the root that leads out
    (tmp_path / "images-other").mkdir()
    photo(seed=13).save(tmp_path / "images-other" / "sibling.jpg")  # shares the root's name as a prefix
    hostile = ["../../../../../../etc/passwd", "/etc/hostname", str(secret), "../images-other/sibling.jpg", "sub/../../secret.jpg"]
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda file, *a, **k: (opened.append(str(file)), real_open(file, *a, **k))[1])
    from imagecoding.images import Path as ImagesPath

    original_read = ImagesPath.read_bytes
    monkeypatch.setattr(ImagesPath, "read_bytes", lambda self: (opened.append(str(self)), original_read(self))[1])
    from imagecoding.posts import display_path

    frame = manifest_of(folder, post_paths=[display_path(p, folder) for p in hostile])  # as the posts table gives them
    monkeypatch.undo()

    for path in hostile + ["sub/link.jpg"]:
        shown = display_path(path, folder)
        assert frame.loc[shown, "status"] == "outside_root", shown
        assert pd.isna(frame.loc[shown, "image_id"]) and "images.extra_roots" in frame.loc[shown, "error"]
    assert not [f for f in opened if "secret" in f or f.startswith("/etc") or "sibling" in f]
    before = listing_fingerprint([str(secret)], folder)
    photo(seed=14, width=300).save(secret)  # not even its size or mtime is looked at
    assert listing_fingerprint([str(secret)], folder) == before


def test_parallel_workers_give_the_same_manifest(folder):
    one = manifest_of(folder, max_pixels=50_000_000)
    two = manifest_of(folder, max_pixels=50_000_000, workers=2)
    pd.testing.assert_frame_equal(one, two)


def test_unchanged_files_are_not_read_again(folder):
    # nanosecond mtimes that a float64 column would round
    os.utime(folder / "cmyk.jpg", ns=(1795542886188263201, 1795542886188263201))
    paths = all_image_paths(folder, EXTENSIONS, ["gone.jpg"])  # a missing file has no mtime
    first = build_manifest(paths, folder)
    assert first.attrs["checked"] == len(paths)
    first.to_parquet(folder.parent / "cache.parquet")
    first = pd.read_parquet(folder.parent / "cache.parquet")
    again = build_manifest(paths, folder, cache=first)
    assert again.attrs["checked"] == 1  # only the missing file is looked for again
    pd.testing.assert_frame_equal(first, again, check_like=True)
    photo(seed=12).save(folder / "plain.jpg")  # replaced content
    changed = build_manifest(paths, folder, cache=first)
    assert changed.attrs["checked"] == 2
    assert changed.set_index("path").loc["plain.jpg", "image_id"] != first.set_index("path").loc["plain.jpg", "image_id"]


def test_fingerprint_changes_only_when_the_listing_does(folder):
    before = listing_fingerprint(find_images(folder, EXTENSIONS), folder)
    scanned = scan_images(folder, EXTENSIONS)  # what every invocation reuses: the same digest, fewer stats
    assert listing_fingerprint(sorted(scanned), folder, (), scanned) == listing_fingerprint(sorted(scanned), folder)
    assert listing_fingerprint(find_images(folder, EXTENSIONS), folder) == before
    photo(seed=13).save(folder / "new.jpg")
    assert listing_fingerprint(find_images(folder, EXTENSIONS), folder) != before


def test_a_path_that_cannot_be_read_is_a_row(folder):
    (folder / "folder.jpg").mkdir()  # a posts table may name a folder by mistake
    frame = manifest_of(folder, post_paths=["folder.jpg"])
    assert frame.loc["folder.jpg", "status"] == "unreadable"
    assert "directory" in frame.loc["folder.jpg", "error"]


def test_configured_paths_follow_the_posts_table(folder, tmp_path):
    posts = tmp_path / "posts.csv"
    pd.DataFrame({"id": [1, 2], "pics": ["plain.jpg;sub/extra.png", ""]}).to_csv(posts, index=False)
    config = {
        "images": {"root": str(folder), "extensions": EXTENSIONS},
        "posts": {"path": str(posts), "image_column": "pics", "id_column": "id", "image_separator": ";"},
    }
    paths = configured_image_paths(config)
    assert "sub/extra.png" in paths and "plain.jpg" in paths
    assert len(paths) == 15
