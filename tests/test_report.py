"""The report: counts, samples, failures and provenance in a folder that works offline and leaks no EXIF."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import gps_photos
from imagecoding.report.build import build_report, failure_table
from imagecoding.report.settings import ReportSettings
from imagecoding.report.schemes import SchemeResult


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "images"
    rows = [
        {"image_id": f"{index:02d}" * 32, "path": path.name, "status": "ok", "error": None}
        for index, path in enumerate(gps_photos(root, 12, seed=0))
    ]
    rows.append({"image_id": None, "path": "gone.jpg", "status": "missing", "error": "no file at gone.jpg"})
    manifest = pd.DataFrame(rows)
    ok = manifest[manifest["status"] == "ok"]
    categories = ["Poster", "<script>alert(1)</script>"]
    scores = pd.DataFrame(
        {
            "image_id": ok["image_id"],
            "kind": [categories[i % 2] for i in range(len(ok))],
            "kind_label": ["a phrase"] * len(ok),
            "kind_prob": np.linspace(20, 90, len(ok)),
            "kind_2": [categories[(i + 1) % 2] for i in range(len(ok))],
            "kind_prob_2": np.linspace(10, 5, len(ok)),
        }
    )
    merged = manifest.merge(scores, on="image_id", how="left")
    merged.insert(0, "has_post", True)
    merged["account"] = ["a", "b"] * 6 + ["a"]
    return root, manifest, merged, SchemeResult("kind", scores, categories, {c: ["a phrase"] for c in categories})


def render(tmp_path, corpus, **settings):
    root, manifest, merged, result = corpus
    options = dict(samples_per_category=3, lowest_confidence=2, account_column="account", thumbnail_size=128)
    options.update(settings)
    return build_report(
        tmp_path / "report",
        manifest,
        merged,
        [result],
        failure_table(manifest),
        {"generated": "2026-01-01T00:00:00", "clip": {"model": "m", "pretrained": "p", "aggregate": "max"}, "schemes": {}},
        root,
        ReportSettings(**options),
    )


def test_counts_failures_and_accounts_are_shown(tmp_path, corpus):
    html = render(tmp_path, corpus).read_text()
    assert "Poster" in html and "gone.jpg" in html and "no file at gone.jpg" in html
    assert "Per account" in html
    assert re.search(r"Files found</th><td class=\"num\">13<", html)


def test_category_names_are_escaped(tmp_path, corpus):
    html = render(tmp_path, corpus).read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_every_link_is_relative_and_exists(tmp_path, corpus):
    index = render(tmp_path, corpus)
    html = index.read_text()
    links = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert links
    for link in links:
        assert not re.match(r"[a-z]+://", link)
        assert (index.parent / link).exists(), link


def test_thumbnails_are_small_and_carry_no_metadata(tmp_path, corpus):
    folder = render(tmp_path, corpus).parent
    thumbs = list((folder / "thumbs").glob("*.jpg"))
    assert thumbs
    for thumb in thumbs:
        with Image.open(thumb) as image:
            assert max(image.size) <= 128
            assert len(image.getexif()) == 0
            assert "exif" not in image.info


def test_samples_follow_the_seed(tmp_path, corpus):
    first = render(tmp_path / "a", corpus, seed=1).read_text()
    again = render(tmp_path / "b", corpus, seed=1).read_text()
    other = render(tmp_path / "c", corpus, seed=2).read_text()
    assert first == again
    assert first != other


def test_check_page_lists_the_sample_as_json(tmp_path, corpus):
    check = (render(tmp_path, corpus).parent / "check.html").read_text()
    payload = re.search(r'<script type="application/json" id="items">(.*?)</script>', check, re.S).group(1)
    assert "</script>" not in payload  # the category name with a script tag cannot close the block
    assert '"kind"' in payload


@pytest.mark.browser
def test_report_opens_offline_with_every_thumbnail(tmp_path, corpus, browser):
    index = render(tmp_path, corpus)
    page = browser.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(index.as_uri())
    page.evaluate("document.querySelectorAll('img').forEach(img => img.loading = 'eager')")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=20_000)
    broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length")
    assert page.evaluate("document.images.length") > 0 and broken == 0
    assert all(url.startswith("file://") for url in requested)
    assert page.title() == "Image coding report"


@pytest.mark.browser
def test_right_wrong_page_counts_and_exports_judgements(tmp_path, corpus, browser):
    check = render(tmp_path, corpus).parent / "check.html"
    page = browser.new_page(accept_downloads=True)
    page.goto(check.as_uri())
    assert page.evaluate("document.getElementById('image').naturalWidth") > 0
    first = page.text_content("#category")
    page.click("#right")
    page.click("#wrong")
    page.keyboard.press("r")
    assert page.text_content("#tally").startswith("2 right, 1 wrong of 12 sampled")
    with page.expect_download() as download:
        page.click("#download")
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "scheme,image_id,path,category,prob,judgement"
    assert len(lines) == 4
    assert lines[1].split(",")[3].strip('"') == first and lines[1].endswith('"right"')
    page.reload()  # judgements survive a reload: the next unjudged image is shown
    assert page.text_content("#tally").startswith("2 right, 1 wrong")
