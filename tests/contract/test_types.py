"""The dashboard's generated API types (frontend/src/api/schema.gen.ts) are what the API's document gives.

CI runs `npm ci` in frontend/ before pytest (`make test`), which installs the generator; without node this
fails in CI (CI=true) and is skipped elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # runs the generator (python and node processes)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "tools" / "gen_types.py"


def test_the_committed_api_types_are_generated_from_the_current_document() -> None:
    if shutil.which("node") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is required in CI to check the generated API types (frontend/src/api/schema.gen.ts)")
        pytest.skip("node is not installed here (CI has Node 20)")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
