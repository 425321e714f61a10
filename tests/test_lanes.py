"""The lanes guard (harness/lanes.py): a test that starts a process unmarked fails, naming the process."""

from __future__ import annotations

import pytest

# The inner tests start processes; this one runs them in-process (pytester's inline run).
pytestmark = pytest.mark.e2e

INNER = """
import subprocess, sys
import pytest

def test_unmarked_starts_one():
    subprocess.run([sys.executable, "-c", "pass"], check=True)

@pytest.mark.e2e
def test_marked_starts_one():
    subprocess.run([sys.executable, "-c", "pass"], check=True)

def test_starts_none():
    assert True
"""


def test_an_unmarked_test_that_starts_a_process_fails_and_a_marked_one_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(INNER)
    pytester.makeini("[pytest]\nmarkers =\n    e2e: x\n    fault: x\n    browser: x\n")
    # harness.lanes is imported already (by this run), so pytest cannot rewrite its asserts again: it says so.
    result = pytester.runpytest_inprocess("-p", "harness.lanes", "-W", "ignore::pytest.PytestAssertRewriteWarning")

    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_unmarked_starts_one started a process (* -c pass) but is not marked e2e / fault / browser*"]
    )
