"""The manifest: every image file accounted for, with its content hash and whether it decodes."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from .images import DEFAULT_MAX_PIXELS, check_image_file
from .posts import absolute_path

MANIFEST_COLUMNS = ["image_id", "path", "bytes", "width", "height", "format", "status", "error"]
# Extra bookkeeping kept only in the cache: a file whose size and mtime are unchanged is not re-read.
# The thumbnail comes from the same decode; results/thumbnails.parquet hands it to the duplicate search.
CACHE_COLUMNS = MANIFEST_COLUMNS + ["mtime_ns", "thumbnail"]


def normalise_extensions(extensions: list[str]) -> set[str]:
    return {"." + ext.lower().lstrip(".") for ext in extensions}


def scan_images(root: str | Path, extensions: list[str]) -> dict[str, tuple[int, int] | None]:
    """Display path -> (size, mtime_ns) of every file under `root` whose ending is configured.

    One pass of os.scandir: its entries carry the stat the listing fingerprint needs, and a file
    reached by walking real folders (links to folders are not followed) lies inside the root. A
    symlinked file maps to None: where it leads is checked with the paths of the posts table.
    """
    wanted = normalise_extensions(extensions)
    found: dict[str, tuple[int, int] | None] = {}
    pending = [(os.path.abspath(root), "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, prefix + entry.name + "/"))
            elif os.path.splitext(entry.name)[1].lower() in wanted:
                if entry.is_symlink():
                    found[prefix + entry.name] = None
                elif entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    found[prefix + entry.name] = (stat.st_size, stat.st_mtime_ns)
    return found


def find_images(root: str | Path, extensions: list[str]) -> list[str]:
    """Display paths of every file under `root` whose ending is configured (case-insensitive)."""
    return list(scan_images(root, extensions))


def all_image_paths(root: str | Path, extensions: list[str], post_paths: list[str] = ()) -> list[str]:
    """Files under the root plus every image the posts table names, each once, sorted."""
    return _with_post_paths(find_images(root, extensions), post_paths)


def _with_post_paths(found, post_paths) -> list[str]:
    return sorted(set(found).union(p for p in post_paths if p))


class AllowedFolders:
    """The folders images may come from: images.root and images.extra_roots, symlinks resolved.

    A posts table is often a scraper's export and the report is shared: a path that leads
    elsewhere (../../etc/passwd, /etc/hostname, a symlink out of the root) is never opened.
    """

    def __init__(self, root: str | Path, extra_roots: list[str] = ()):
        self.folders = [os.path.realpath(folder) for folder in [root, *extra_roots]]

    def allows(self, absolute: str | Path) -> bool:
        real = os.path.realpath(absolute)
        return any(real == folder or real.startswith(folder.rstrip(os.sep) + os.sep) for folder in self.folders)


def outside_row(path: str) -> dict:
    error = (
        f"{path} lies outside images.root and images.extra_roots (after following links), so it was not "
        "opened; add its folder to images.extra_roots to include it"
    )
    return {**dict.fromkeys(CACHE_COLUMNS), "path": path, "status": "outside_root", "error": error}


def listing_fingerprint(
    paths: list[str], root: str | Path, extra_roots: list[str] = (), scanned: dict[str, tuple[int, int] | None] | None = None
) -> str:
    """A cheap digest of which files exist with which size and mtime.

    Given to the manifest rule as a param, it makes Snakemake re-run the manifest (and only
    what depends on it) when images are added, removed or replaced, without listing every
    image as a rule input. Paths outside the allowed folders count by name only. `scanned`
    (from scan_images) saves a stat and a link check for every plain file found under the root.
    """
    allowed = AllowedFolders(root, extra_roots)
    scanned = scanned or {}
    digest = hashlib.sha256()
    for path in paths:
        known = scanned.get(path)
        if known is not None:
            entry = f"{path}\0{known[0]}\0{known[1]}\n"
        else:
            absolute = absolute_path(path, root)
            try:
                if not allowed.allows(absolute):
                    raise PermissionError
                stat = os.stat(absolute)
                entry = f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
            except OSError:
                entry = f"{path}\0missing\n"
        digest.update(entry.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def _check_one(task: tuple[str, str, int]) -> dict:
    path, absolute, max_pixels = task
    row = asdict(check_image_file(absolute, max_pixels))
    row["path"] = path
    try:
        row["mtime_ns"] = os.stat(absolute).st_mtime_ns
    except OSError:
        row["mtime_ns"] = None
    return row


def _plain(value):
    """Cached rows come back with pandas' missing-value markers; new rows use None."""
    return None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else value


def build_manifest(
    paths: list[str],
    root: str | Path,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 1,
    cache: pd.DataFrame | None = None,
    progress=None,
    extra_roots: list[str] = (),
) -> pd.DataFrame:
    """Check every path, reusing cached rows of files whose size and mtime have not changed.

    Paths outside images.root and `extra_roots` become `outside_root` rows and are never opened.
    Returns the manifest with the cache's extra `mtime_ns` column (`manifest_table` drops it);
    `frame.attrs["checked"]` says how many files were actually read.
    """
    allowed = AllowedFolders(root, extra_roots)
    reusable: dict[str, dict] = {}
    if cache is not None and len(cache):
        for row in cache.to_dict("records"):
            reusable[row["path"]] = row
    rows: list[dict] = []
    todo: list[tuple[str, str, int]] = []
    for path in paths:
        absolute = str(absolute_path(path, root))
        if not allowed.allows(absolute):
            rows.append(outside_row(path))
            continue
        cached = reusable.get(path)
        # A decodable file cached before thumbnails were kept is read once more, to get its thumbnail.
        stale = cached is not None and cached.get("status") == "ok" and _plain(cached.get("thumbnail")) is None
        if cached is not None and cached.get("status") != "missing" and not stale:
            try:
                stat = os.stat(absolute)
            except OSError:
                stat = None
            if stat and stat.st_size == cached["bytes"] and stat.st_mtime_ns == cached["mtime_ns"]:
                rows.append(cached)
                continue
        todo.append((path, absolute, max_pixels))
    if todo:
        if workers > 1 and len(todo) > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                checked = pool.map(_check_one, todo, chunksize=max(1, min(64, len(todo) // (workers * 4))))
                for row in checked:
                    rows.append(row)
                    if progress:
                        progress.update(1)
        else:
            for task in todo:
                rows.append(_check_one(task))
                if progress:
                    progress.update(1)
    integers = {"bytes", "width", "height", "mtime_ns"}
    # Column by column: going through float64 would round nanosecond mtimes and break the cache.
    frame = pd.DataFrame(
        {
            column: pd.array([_plain(row.get(column)) for row in rows], dtype="Int64" if column in integers else "str")
            for column in CACHE_COLUMNS
            if column != "thumbnail"
        }
    )
    frame["thumbnail"] = pd.Series([_plain(row.get("thumbnail")) for row in rows], dtype=object)
    frame = frame.sort_values("path", kind="stable").reset_index(drop=True)
    frame.attrs["checked"] = len(todo)
    return frame


def manifest_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The public manifest columns, in the order the README's results table gives them."""
    return frame[MANIFEST_COLUMNS].reset_index(drop=True)


def thumbnail_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct decodable image: `image_id` and its greyscale `thumbnail` (bytes)."""
    usable = distinct_decodable(frame)
    return usable.loc[usable["thumbnail"].notna(), ["image_id", "thumbnail"]].reset_index(drop=True)


def configured_image_paths(config: dict) -> list[str]:
    """Display paths the manifest covers for a configuration: the root's files plus the posts' images."""
    return configured_listing(config)[0]


def configured_listing(config: dict) -> tuple[list[str], dict[str, tuple[int, int] | None]]:
    """(display paths the manifest covers, scan_images of the root): what every invocation lists, once."""
    from .posts import post_image_links, read_posts

    images, posts = config["images"], config.get("posts") or {}
    post_paths: list[str] = []
    if posts.get("path"):
        links = post_image_links(
            read_posts(posts["path"]),
            posts.get("image_column", "image"),
            posts.get("id_column"),
            images["root"],
            posts.get("image_separator"),
        )
        post_paths = links["path"].dropna().tolist()
    scanned = scan_images(images["root"], images["extensions"])
    return _with_post_paths(scanned, post_paths), scanned


def read_listing(path: str | Path) -> list[str]:
    """The display paths of a listing the main process wrote (imagecoding/invocation.py)."""
    return pd.read_parquet(path)["path"].tolist()


def distinct_decodable(manifest: pd.DataFrame) -> pd.DataFrame:
    """The manifest's decodable rows, the first row of each image_id: one row per image a model can see."""
    return manifest[manifest["status"] == "ok"].drop_duplicates("image_id")


def decodable_images(manifest: pd.DataFrame, root: str | Path) -> list[tuple[str, str]]:
    """(image_id, absolute path) of each distinct decodable image: what every model step works on."""
    usable = distinct_decodable(manifest)
    return [(image_id, str(absolute_path(path, root))) for image_id, path in zip(usable["image_id"], usable["path"])]
