"""docs/RELIABILITY.md ties each promise to a test: every test it names must exist."""

import re

from workflow_helpers import REPO


def test_every_test_named_in_reliability_md_exists():
    text = (REPO / "docs" / "RELIABILITY.md").read_text()
    named = 0
    for line in text.splitlines():
        current = None
        for file, function in re.findall(r"`(test_\w+\.py)?::(test_\w+)`", line):
            current = file or current
            assert current, f"'::{function}' follows no file in: {line}"
            source = (REPO / "tests" / current).read_text()
            assert re.search(rf"^def {function}\(", source, re.M), f"{current}::{function} is named but does not exist"
            named += 1
    assert named >= 30
