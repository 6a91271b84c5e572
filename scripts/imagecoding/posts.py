"""Reading the researcher's posts table and resolving the images each post names."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd


class PostsTableError(ValueError):
    """The posts table cannot be used as configured; the message names the key and the fix."""


def read_posts(path: str | Path) -> pd.DataFrame:
    """Read a posts table from CSV or parquet, keeping every column as the researcher wrote it."""
    path = Path(path)
    if not path.exists():
        raise PostsTableError(f"posts.path: no file at '{path}'. Fix the path or remove posts.path.")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return pd.read_csv(path, sep=delimiter(path), dtype=str, keep_default_na=False)
    raise PostsTableError(
        f"posts.path: '{path}' is neither CSV (.csv/.tsv) nor parquet (.parquet); convert it to one of them."
    )


DELIMITERS = ",;\t|"


def delimiter(path: Path) -> str:
    """The field separator of a CSV export: comma, or what a spreadsheet in German (;) or a TSV (tab) used."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        sample = handle.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def display_path(path: str | Path, root: str | Path) -> str:
    """How results name a file: relative to images.root when inside it, absolute otherwise.

    Symlinks are not resolved, so a linked folder inside the root still counts as inside.
    """
    root = os.path.abspath(root)
    absolute = os.path.abspath(os.path.join(root, path))
    if absolute == root or absolute.startswith(root.rstrip(os.sep) + os.sep):
        return Path(os.path.relpath(absolute, root)).as_posix()
    return Path(absolute).as_posix()


def absolute_path(path: str, root: str | Path) -> Path:
    """The file a manifest `path` refers to."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else Path(root) / candidate


def require_columns(posts: pd.DataFrame, columns: dict[str, str | None]) -> None:
    """Every configured column (key -> column name, None where unset) is in the posts table, or a message naming the fix."""
    for key, column in columns.items():
        if column is not None and column not in posts.columns:
            names = list(map(str, posts.columns))
            hint = ""
            if len(names) == 1 and any(d in names[0] for d in DELIMITERS):
                hint = " It was read as one column: is the file delimited by something other than , ; tab or |?"
            raise PostsTableError(
                f"{key}: the posts table has no column '{column}'. Its columns are: {', '.join(names)}.{hint} "
                f"Set {key} to one of them."
            )


def post_image_links(
    posts: pd.DataFrame,
    image_column: str,
    id_column: str | None,
    root: str | Path,
    separator: str | None = None,
) -> pd.DataFrame:
    """One row per (post, image): the post's row number and the image's display path.

    A cell may name several images when `separator` is set; an empty cell links the post
    to no image (it is kept in the merge all the same).
    """
    require_columns(posts, {"posts.image_column": image_column, "posts.id_column": id_column})
    rows = []
    for row_number, cell in enumerate(posts[image_column].tolist()):
        if cell is None or (isinstance(cell, float) and pd.isna(cell)) or str(cell).strip() == "":
            rows.append((row_number, None))
            continue
        parts = str(cell).split(separator) if separator else [str(cell)]
        for part in parts:
            part = part.strip()
            if part:
                rows.append((row_number, display_path(part, root)))
    return pd.DataFrame(rows, columns=["post_row", "path"])
