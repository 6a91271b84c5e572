"""Tests marked `needs_root` skip, with their reason, for any user but root; under CI, which runs as root, a skip
of one of them fails instead, so they cannot quietly stop running there.

Registered for every run by tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import os

import pytest

MARKER = "needs_root"


def in_ci() -> bool:
    """CI runs `bash .ci/run` with CI=true; a developer's `make test` has no CI, or CI=false/0."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_configure(config):
    config.addinivalue_line("markers", f"{MARKER}(why): runs only as root, saying why when it skips; CI, as root, must run it")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is not None:
            why = marker.args[0] if marker.args else "it changes the system"
            # A skip mark, not a skip inside a fixture: it is reported at the test's own line, and no fixture
            # installs or starts anything for a test that cannot pass.
            item.add_marker(pytest.mark.skip(reason=f"needs root: {why}. Run the tests as root to include it (CI does)"))


# A skip at setup becomes an error of the test, a skip in its body a failure: either fails the run.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.skipped and item.get_closest_marker(MARKER) is not None and in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = (f"CI skipped a test that needs root ({reason}). CI must run it: start .ci/run as root, "
                           f"or find what made the test skip and mend it")
    return report
