"""`make audit`'s verdicts: a vulnerability fails, missing advisory data is said by name, never a silent pass.

The audit itself runs as a step of `make test` (deploy/tools/audit.py), not here: where the registry serves no
advisory data it cannot run, and a test that cannot run would be a skip."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("audit", ROOT / "deploy" / "tools" / "audit.py")
assert spec is not None
assert spec.loader is not None
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)


def test_a_vulnerable_python_package_fails_and_missing_data_is_not_a_pass() -> None:
    vulnerable = {"dependencies": [{"name": "h11", "version": "0.14.0", "vulns": [{"id": "GHSA-vqfr-h8mv-ghfj"}]}]}
    assert audit.pip_verdict(vulnerable)[0] == audit.FOUND
    no_data = {"dependencies": [{"name": "h11", "version": "0.16.0", "skip_reason": "Dependency not found on PyPI"}]}
    assert audit.pip_verdict(no_data) == (audit.NOT_RUN, "pip-audit had no vulnerability data for 1 of 1 packages")
    assert audit.pip_verdict(None, "ConnectionError\n")[0] == audit.NOT_RUN
    clean = {"dependencies": [{"name": "h11", "version": "0.16.0", "vulns": []}]}
    assert audit.pip_verdict(clean)[0] == audit.PASS


def test_a_vulnerable_npm_package_fails_and_an_unreachable_registry_is_not_a_pass() -> None:
    found = {"vulnerabilities": {"vite": {}}, "metadata": {"vulnerabilities": {"high": 1, "total": 1}}}
    assert audit.npm_verdict(found)[0] == audit.FOUND
    assert audit.npm_verdict({"error": {"summary": "405 Method Not Allowed"}})[0] == audit.NOT_RUN
    unreachable = {"message": "405 Method Not Allowed - POST https://registry.example/advisories", "statusCode": 405}
    assert audit.npm_verdict(unreachable) == (audit.NOT_RUN, "npm audit: 405 Method Not Allowed")
    assert audit.npm_verdict({"metadata": {"vulnerabilities": {"total": 0}}})[0] == audit.PASS


@pytest.mark.e2e
def test_not_run_fails_the_step_only_where_the_audit_is_required(tmp_path: Path) -> None:
    """Here the advisory data may be out of reach: the step says so, and fails when MDSTACK_REQUIRE_AUDIT=1
    while anything was not run."""
    env = {"PATH": str(tmp_path), "MDSTACK_REQUIRE_AUDIT": "1"}  # no npm on this PATH: npm is "not run"
    done = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "tools" / "audit.py")],
        capture_output=True, text=True, timeout=600, check=False, env=env,
    )  # fmt: skip
    assert "AUDIT NOT RUN (npm): npm is not installed" in done.stdout, done.stdout + done.stderr
    assert done.returncode == 1
