"""The one report renderer: a self-contained HTML folder with counts, samples, failures and provenance."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..images import ImageProblem, upload_jpeg
from ..manifest import distinct_decodable
from ..outputs import atomic_directory
from ..posts import absolute_path
from .consensus import consensus_view, format_cell
from .frames import FramesResult, frames_view
from .schemes import SchemeResult, right_wrong_items, scheme_view
from .settings import ReportSettings
from .signals import ensemble_view, image_notes, signals_view

TEMPLATES = Path(__file__).parent / "templates"


def thumbnail_name(image_id: str) -> str:
    return f"thumbs/{image_id[:20]}.jpg"


def _make_thumbnail(task: tuple[str, str, int]) -> str | None:
    source, target, size = task
    try:
        payload = upload_jpeg(source, size)
    except ImageProblem as problem:
        return f"{problem.status}: {problem.detail}"
    Path(target).write_bytes(payload)
    return None


def make_thumbnails(image_paths: dict[str, str], out_dir: Path, size: int, workers: int = 1) -> dict[str, str]:
    """Write one EXIF-free JPEG thumbnail per image id; returns id -> relative thumbnail path."""
    (out_dir / "thumbs").mkdir(parents=True, exist_ok=True)
    tasks = [(path, str(out_dir / thumbnail_name(image_id)), size) for image_id, path in image_paths.items()]
    if workers > 1 and len(tasks) > 16:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            errors = list(pool.map(_make_thumbnail, tasks, chunksize=8))
    else:
        errors = [_make_thumbnail(task) for task in tasks]
    return {image_id: thumbnail_name(image_id) for image_id, error in zip(image_paths, errors) if error is None}


def _format_percent(value: float) -> str:
    return f"{value:.1f}"



def build_report(
    out_dir: str | Path,
    manifest: pd.DataFrame,
    merged: pd.DataFrame,
    schemes: list[SchemeResult],
    failures: pd.DataFrame,
    provenance: dict,
    root: str | Path,
    settings: ReportSettings = ReportSettings(),
    workers: int = 1,
    check_sample: int = 100,
    frames: FramesResult | None = None,
    signals: dict[str, pd.DataFrame] | None = None,
    ensemble: pd.DataFrame | None = None,
    consensus: dict[str, pd.DataFrame] | None = None,
    agreement: pd.DataFrame | None = None,
    validation: dict | None = None,
    learned: list[dict] | None = None,
    estimates: dict | None = None,
    multimodal: pd.DataFrame | None = None,
    routing: dict | None = None,
    stability: dict | None = None,
    duplicates: dict | None = None,
) -> Path:
    """Render the report folder and return the path of its index.html.

    `signals` maps a signal's name to its table, `consensus` a scheme to its consensus table;
    `agreement` is consensus/agreement.csv; `validation` the view of report.validation, `learned` that of
    report.learned, `estimates` that of report.estimates, `multimodal` the multimodal LLM's table, `routing` the
    view of report.routing, `stability` that of report.stability, `duplicates` that of report.duplicates.
    Each adds its section when given; without human codes the validation section says how to get them.
    """
    with atomic_directory(out_dir) as folder:  # a failed write leaves the previous report as it was
        _render(folder, manifest, merged, schemes, failures, provenance, root, settings, workers, check_sample,
                frames, signals, ensemble, consensus, agreement, validation, learned, estimates, multimodal, routing,
                stability, duplicates)
    return Path(out_dir) / "index.html"


def _render(out_dir, manifest, merged, schemes, failures, provenance, root, settings, workers, check_sample,
            frames, signals, ensemble, consensus, agreement, validation, learned=None, estimates=None, multimodal=None,
            routing=None, stability=None, duplicates=None) -> None:
    rng = np.random.default_rng(settings.seed)
    views = [scheme_view(result, merged, settings, rng) for result in schemes]
    checks = {result.name: right_wrong_items(result, check_sample, rng) for result in schemes}

    wanted = set()
    for view in views:
        for category in view["categories"]:
            wanted.update(r["image_id"] for r in category["sample"])
            wanted.update(r["image_id"] for r in category["lowest"])
    for items in checks.values():
        wanted.update(item["image_id"] for item in items)
    first_path = distinct_decodable(manifest).set_index("image_id")["path"]
    frames_section = None
    if frames is not None:
        frames_section = frames_view(frames, first_path.to_dict(), settings, rng)
        for variable in frames_section["variables"]:
            for row in variable["rows"]:
                wanted.update(row["sample"])
    categories = {r.name: r.categories for r in schemes}
    ensemble_section, multimodal_section = (
        None if table is None else ensemble_view(table, categories, first_path.to_dict(), settings.max_failures)
        for table in (ensemble, multimodal))
    consensus_sections = []
    for scheme, table in (consensus or {}).items():
        section = consensus_view(scheme, table, agreement, max(1, settings.samples_per_category), rng)
        consensus_sections.append(section)
        wanted.update(item["image_id"] for item in section["gallery"])
    if validation:
        wanted.update(validation["images"])
    if duplicates:
        for group in duplicates["largest"]:
            wanted.update(group["image_ids"])
    sources = {i: str(absolute_path(first_path[i], root)) for i in sorted(wanted) if i in first_path.index}
    thumbs = make_thumbnails(sources, out_dir, settings.thumbnail_size, workers)
    paths = {i: first_path[i] for i in sources}

    status_counts = manifest["status"].value_counts()
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _format_percent
    env.filters["agreement"] = format_cell
    context = {
        "title": settings.title,
        "settings": settings,
        "summary": {
            "files": len(manifest),
            "distinct_images": int(manifest.loc[manifest["status"] == "ok", "image_id"].nunique()),
            "duplicates": int(
                (manifest["status"] == "ok").sum() - manifest.loc[manifest["status"] == "ok", "image_id"].nunique()
            ),
            "failed": int(len(failures)),
            "status_counts": {str(k): int(v) for k, v in status_counts.items()},
            "posts": int(merged["has_post"].sum()) if "has_post" in merged.columns else 0,
            "images_without_post": int((~merged["has_post"]).sum()) if "has_post" in merged.columns else 0,
        },
        "schemes": views,
        "frames": frames_section,
        "signals": signals_view(signals) if signals else None,
        "ensemble": ensemble_section,
        "multimodal": multimodal_section,
        "routing": routing,
        "consensus": consensus_sections,
        "notes": image_notes(merged, [r.name for r in schemes]),
        "validation": validation,
        "stability": stability,
        "learned": learned,
        "estimates": estimates,
        "duplicates": duplicates,
        "thumbs": thumbs,
        "paths": paths,
        "failures": failures.head(settings.max_failures).to_dict("records"),
        "failures_total": len(failures),
        "provenance": provenance,
        "provenance_json": json.dumps(provenance, indent=2, sort_keys=True, default=str),
    }
    (out_dir / "index.html").write_text(env.get_template("report.html.j2").render(**context), encoding="utf-8")
    check_items = {
        name: [dict(item, thumb=thumbs.get(item["image_id"]), path=paths.get(item["image_id"])) for item in items]
        for name, items in checks.items()
    }
    (out_dir / "check.html").write_text(
        env.get_template("check.html.j2").render(title=settings.title, checks=check_items, provenance=provenance),
        encoding="utf-8",
    )
    (out_dir / "provenance.json").write_text(context["provenance_json"], encoding="utf-8")


def failure_table(manifest: pd.DataFrame, step_failures: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Every file or image that did not make it through a step, with the step, the status and the reason.

    `step_failures` maps a step (clip_embed, signals_ocr, ...) to its rows whose status is not ok.
    """
    failed = manifest[manifest["status"] != "ok"][["path", "image_id", "status", "error"]].copy()
    failed.insert(0, "step", "manifest")
    paths = manifest.drop_duplicates("image_id").set_index("image_id")["path"]
    parts = [failed]
    for step, rows in (step_failures or {}).items():
        if len(rows):
            extra = rows[["image_id", "status", "error"]].copy()
            extra.insert(0, "path", extra["image_id"].map(paths))
            extra.insert(0, "step", step)
            parts.append(extra)
    return pd.concat(parts, ignore_index=True).reset_index(drop=True)
