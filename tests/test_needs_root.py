"""Tests that need root skip, with their reason, as another user, and fail instead when CI would skip them."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent

ROOT_ONLY = """
import pytest

@pytest.fixture
def daemon():
    open("daemon-started", "w").close()  # where a real test would start slurmd

@pytest.mark.needs_root("it starts a daemon")
def test_root_only(daemon):
    pass

def test_anyone():
    pass
"""


def run(pytester, monkeypatch, uid: int, ci: str | None):
    monkeypatch.setattr(os, "geteuid", lambda: uid)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_inner=ROOT_ONLY)
    return pytester.runpytest("-p", "needs_root", "-rsf")


def test_as_another_user_a_root_only_test_skips_with_its_reason_before_its_fixtures(pytester, monkeypatch):
    result = run(pytester, monkeypatch, uid=1000, ci=None)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs root: it starts a daemon. Run the tests as root to include it (CI does)*"])
    assert not (pytester.path / "daemon-started").exists()


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_skipped_root_only_test_fails(pytester, monkeypatch, ci):
    result = run(pytester, monkeypatch, uid=1000, ci=ci)
    result.assert_outcomes(passed=1, errors=1)  # failed at setup, before its fixtures
    result.stdout.fnmatch_lines(["*CI skipped a test that needs root (needs root: it starts a daemon.*start .ci/run as root*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert not (pytester.path / "daemon-started").exists()


def test_a_skip_for_any_other_reason_fails_under_ci_too(pytester, monkeypatch):
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_inner="""
        import pytest

        @pytest.mark.needs_root("it starts a daemon")
        def test_root_only():
            pytest.skip("the cluster is busy")
    """)
    result = pytester.runpytest("-p", "needs_root")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CI skipped a test that needs root (the cluster is busy)*"])


@pytest.mark.parametrize("ci", [None, "false"])
def test_as_root_root_only_tests_run_and_outside_ci_nothing_changes(pytester, monkeypatch, ci):
    result = run(pytester, monkeypatch, uid=0, ci=ci)
    result.assert_outcomes(passed=2)
    assert (pytester.path / "daemon-started").exists()


@pytest.mark.needs_root("it runs pytest as the user nobody")
def test_the_slurm_tests_skip_as_nobody_and_fail_under_ci():
    """The real thing, cheaply: tests/test_slurm.py as an unprivileged user stops at setup, before any cluster."""
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (Debian's util-linux) is missing: it switches to the user nobody for this test")
    scratch = Path(tempfile.mkdtemp(prefix="imagecoding-nobody-"))
    scratch.chmod(0o777)  # nobody's home and pytest's temporary folder; /tmp/pytest-of-root is root's alone
    try:
        outcomes = {}
        for ci in ("", "true"):
            env = {"PATH": os.environ["PATH"], "HOME": str(scratch), "TMPDIR": str(scratch), "CI": ci, "HF_HUB_OFFLINE": "1"}
            command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-m", "pytest",
                       "tests/test_slurm.py", "-p", "no:cacheprovider", "-q", "-rsf", "--basetemp", str(scratch / f"run{ci}")]
            outcomes[ci] = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    quiet, ci = outcomes[""], outcomes["true"]
    assert quiet.returncode == 0, quiet.stdout[-3000:] + quiet.stderr[-3000:]
    assert "2 skipped" in quiet.stdout and "needs root: it installs Debian's SLURM" in quiet.stdout, quiet.stdout[-3000:]
    assert ci.returncode == 1 and "2 errors" in ci.stdout, ci.stdout[-3000:] + ci.stderr[-3000:]
    assert "CI skipped a test that needs root" in ci.stdout
