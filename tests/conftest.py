"""Shared fixtures: offline mode, a tiny open_clip checkpoint, the example run to the end once per session, and how
`make test` spreads the suite over its workers (pytest-xdist, --dist loadgroup)."""

import gc
import os
import shutil
from pathlib import Path

import pytest

from workflow_helpers import EXAMPLE_RUN

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


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_checkpoint) -> Path:
    """The example, run once to the end with the tiny model; tests that change it work on a copy (`copy_run`).

    Its modules are one unit of work under `pytest -n` (SHARED_RUNS below), so one worker builds it once."""
    from workflow_helpers import prepare_workdir, snakemake, write_config

    workdir = prepare_workdir(tmp_path_factory.mktemp("run"))
    write_config(workdir, tiny_checkpoint)
    snakemake(workdir)
    return workdir


# How `make test` spreads the suite over its workers (pytest -n). Tests of one module share its module-scoped fixtures
# (a finished workflow run, a loaded model, a test server), so a module is one unit of work and runs on one worker;
# modules that share a session-scoped run are one unit together. The units known to be long go out first, so that none
# starts last and leaves the other worker idle. (xdist's own `--dist loadgroup` cannot do this with pytest 9.2: the
# group it appends to a test's node id is lost, and every test of a group is scheduled on its own.)
SHARED_RUNS = {"test_workflow.py": EXAMPLE_RUN, "test_labelstudio.py": EXAMPLE_RUN, "test_duplicates_workflow.py": EXAMPLE_RUN}  # finished_run
# Serial seconds of each unit, setup included, from `--durations` on 2 cores (AMD EPYC, December 2026); units not
# named here follow these, in collection order.
UNIT_SECONDS = {
    "test_reruns.py": 350,  # three rows for the duplicate groups and the picture unit add about 20
    EXAMPLE_RUN: 335,  # test_duplicates_workflow.py: its reposted copy of the run measured 34 s
    "test_slurm.py": 190,
    "test_routing_workflow.py": 140,
    "test_ensemble_workflow.py": 130,
    "test_hostile_workflow.py": 90,
    "test_frames.py": 60,
    "test_env_drift.py": 60,
    "test_estimates_workflow.py": 60,
    "test_learned_workflow.py": 60,
    "test_stability_workflow.py": 70,
    "test_frames_workflow.py": 55,
    "test_validation_workflow.py": 40,
}


def unit_of(nodeid: str) -> str:
    module = nodeid.split("::")[0].rsplit("/", 1)[-1]
    return SHARED_RUNS.get(module, module)


LONGEST_FIRST = {unit: rank for rank, unit in enumerate(sorted(UNIT_SECONDS, key=UNIT_SECONDS.get, reverse=True))}


def unit_rank(nodeid: str) -> int:
    return LONGEST_FIRST.get(unit_of(nodeid), len(LONGEST_FIRST))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """In an xdist worker, the collection goes to the scheduler longest unit first (every worker sorts alike, and the
    scheduler sends tests by their index in it); a plain run keeps the file order."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: unit_rank(item.nodeid))  # stable: file order within a unit


def pytest_xdist_make_scheduler(config, log):
    """Under `pytest -n` (xdist's default `--dist load`): one unit per module or shared run, in collection order."""
    if config.getvalue("dist") != "load":
        return None  # an explicit --dist keeps xdist's own scheduler
    from xdist.scheduler import LoadScopeScheduling

    class SharedRunScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    config.option.loadscopereorder = False  # the order sorted above, not xdist's by number of tests
    return SharedRunScheduling(config, log)


@pytest.fixture(autouse=True, scope="module")
def collect_native_objects():
    """Finalise each module's leftovers (OpenVINO compiled models, oneDNN primitives, torch modules held in reference
    cycles) in the main thread when the module ends, not at whatever moment a later test's worker thread happens to
    trigger a garbage collection."""
    yield
    gc.collect()


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
