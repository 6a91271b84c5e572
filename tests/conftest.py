"""Shared fixtures: offline mode, a tiny open_clip checkpoint, and a bundled-example copy to run on."""

import os
import shutil
from pathlib import Path

import pytest

# Tests never reach a model hub: the tiny model comes from tests/models and a seeded checkpoint.
os.environ["HF_HUB_OFFLINE"] = "1"

pytest_plugins = ["needs_root"]  # tests that need root skip as another user, and fail instead under CI

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from tiny_clip import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("tiny-clip") / "tiny-clip.pt")


@pytest.fixture(scope="session")
def tiny_coca_checkpoint(tmp_path_factory) -> Path:
    from tiny_clip import COCA_CONFIG, make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("tiny-coca") / "tiny-coca.pt", config=COCA_CONFIG)


@pytest.fixture
def example_copy(tmp_path) -> Path:
    """A writable copy of the example images and posts table."""
    shutil.copytree(EXAMPLE / "images", tmp_path / "images")
    shutil.copy(EXAMPLE / "posts.csv", tmp_path / "posts.csv")
    return tmp_path


def gps_photos(root: Path, count: int, seed: int, size=(300, 400)) -> list[Path]:
    """Random photos img0.jpg... whose EXIF holds a camera maker and a GPS position, which must never leave the machine."""
    import numpy as np
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {2: (48.0, 51.0, 29.0)}
    paths = []
    for index in range(count):
        path = root / f"img{index}.jpg"
        Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(path, exif=exif.tobytes())
        with Image.open(path) as saved:
            assert saved.getexif()[0x010F] == "PhoneMaker"
        paths.append(path)
    return paths


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (tools/install-system-deps.sh chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()
