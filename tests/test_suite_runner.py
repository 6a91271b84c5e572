"""How `make test` runs the suite: a native crash stays in the one test that caused it, and the modules that share a
finished run are scheduled as one unit, the longest first (tests/conftest.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_RUNS, UNIT_SECONDS, unit_of, unit_rank

REPO = Path(__file__).resolve().parent.parent

CRASHING = '''
import ctypes

def test_before():
    pass

def test_segfaults():
    ctypes.string_at(0)

def test_after():
    pass
'''


def test_a_native_crash_fails_its_own_test_and_every_other_test_still_runs(tmp_path):
    (tmp_path / "test_inner.py").write_text(CRASHING)
    run = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-o", "addopts=",
                          "--rootdir", str(tmp_path), str(tmp_path)], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "crashed while running" in output and "test_segfaults" in output
    assert "2 passed" in output and "1 failed" in output  # the runner lived on and ran the rest
    assert "Fatal Python error: Segmentation fault" in output  # faulthandler says where


INNER_CONFTEST = '''
import importlib.util, os

spec = importlib.util.spec_from_file_location("suite_conftest", os.environ["SUITE_CONFTEST"])
suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)
pytest_xdist_make_scheduler = suite.pytest_xdist_make_scheduler
pytest_collection_modifyitems = suite.pytest_collection_modifyitems
'''

# A module whose module-scoped fixture notes each time it is built and by which worker, like a finished workflow run.
MODULE = '''
import os
import pytest

@pytest.fixture(scope="module")
def built():
    with open(os.environ["BUILDS"], "a") as log:
        log.write(f"{NAME} {os.environ['PYTEST_XDIST_WORKER']}\\n")

@pytest.mark.parametrize("n", range(6))
def test_uses_the_run(built, n):
    with open(os.environ["RAN"], "a") as log:
        log.write(f"{NAME} {os.environ['PYTEST_XDIST_WORKER']}\\n")
'''


def test_under_xdist_each_unit_runs_on_one_worker_and_builds_its_run_once(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "conftest.py").write_text(INNER_CONFTEST)
    modules = ["test_workflow.py", "test_labelstudio.py", "test_reruns.py", "test_alpha.py", "test_beta.py"]
    for module in modules:
        (inner / module).write_text(f"NAME = {module!r}\n" + MODULE)
    env = dict(os.environ, SUITE_CONFTEST=str(REPO / "tests" / "conftest.py"), BUILDS=str(tmp_path / "builds"),
               RAN=str(tmp_path / "ran"), PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO / "scripts")]))
    run = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-o", "addopts=",
                          "--rootdir", str(inner), str(inner)], capture_output=True, text=True, timeout=300, cwd=inner,
                         env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    builds = [line.split() for line in (tmp_path / "builds").read_text().splitlines()]
    assert sorted(name for name, _ in builds) == sorted(modules)  # every module's run built once, none twice
    ran = [line.split() for line in (tmp_path / "ran").read_text().splitlines()]
    assert len(ran) == 6 * len(modules)
    workers = {name: {worker for other, worker in ran if other == name} for name in modules}
    assert all(len(used) == 1 for used in workers.values()), workers  # a unit stays on its worker
    assert workers["test_workflow.py"] == workers["test_labelstudio.py"]  # the modules sharing finished_run, together


def test_modules_sharing_a_run_are_one_unit_and_other_modules_their_own():
    assert {unit_of(f"tests/{module}::test_x") for module in SHARED_RUNS} == {"example_run"}
    assert unit_of("tests/test_frames.py::test_a[1]") == unit_of("tests/test_frames.py::test_b") == "test_frames.py"


@pytest.mark.parametrize("unit", sorted(UNIT_SECONDS))
def test_every_long_unit_names_a_module_or_shared_run_that_exists(unit):
    modules = {path.name for path in (REPO / "tests").glob("test_*.py")}
    assert unit in modules or unit in set(SHARED_RUNS.values()), f"{unit} in UNIT_SECONDS names no test module"


def test_the_longest_units_go_first_and_a_units_tests_stay_in_file_order():
    nodeids = ["tests/test_config.py::test_a", "tests/test_reruns.py::test_b[1]", "tests/test_workflow.py::test_c",
               "tests/test_reruns.py::test_b[2]", "tests/test_labelstudio.py::test_d"]
    ordered = sorted(nodeids, key=unit_rank)
    assert ordered == ["tests/test_reruns.py::test_b[1]", "tests/test_reruns.py::test_b[2]", "tests/test_workflow.py::test_c",
                       "tests/test_labelstudio.py::test_d", "tests/test_config.py::test_a"]
