"""`make audit`: known vulnerabilities in the locked dependencies (pip-audit) and the dashboard's (npm audit).

A vulnerability found fails the run. Both tools need their registry's vulnerability data; where it cannot be
had (a registry mirror that serves packages but not advisories), the run says AUDIT NOT RUN with the reason,
and MDSTACK_REQUIRE_AUDIT=1 (the GitHub workflow sets it) makes that a failure too: never a silent pass.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300
PASS, FOUND, NOT_RUN = "pass", "found", "not run"


def pip_verdict(report: dict[str, Any] | None, stderr: str = "") -> tuple[str, str]:
    """(verdict, detail) from pip-audit's JSON report (None: it printed none)."""
    if report is None:
        return NOT_RUN, f"pip-audit could not run: {stderr.strip().splitlines()[-1:] or 'no report'}"
    deps = report.get("dependencies", [])
    vulnerable = {d["name"]: [v["id"] for v in d["vulns"]] for d in deps if d.get("vulns")}
    if vulnerable:
        return FOUND, f"known vulnerabilities: {vulnerable}"
    skipped = [d["name"] for d in deps if d.get("skip_reason")]
    if skipped:
        return NOT_RUN, f"pip-audit had no vulnerability data for {len(skipped)} of {len(deps)} packages"
    return PASS, f"{len(deps)} packages, no known vulnerability"


def npm_verdict(report: dict[str, Any] | None) -> tuple[str, str]:
    """(verdict, detail) from `npm audit --json` (None: it printed none). A pass needs the counts."""
    if report is None:
        return NOT_RUN, "npm audit printed no report"
    found = report.get("metadata", {}).get("vulnerabilities")
    if not isinstance(found, dict):
        error = report.get("error")
        reason = report.get("message") or (error.get("summary") if isinstance(error, dict) else error) or "no counts"
        return NOT_RUN, f"npm audit: {str(reason).split(' - ')[0]}"  # the reason, not the registry's address
    if found.get("total"):
        return FOUND, f"known vulnerabilities: {found} ({sorted(report.get('vulnerabilities', {}))})"
    return PASS, "no known vulnerability"


def _json(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def run_pip() -> tuple[str, str]:
    tool = Path(sys.executable).with_name("pip-audit")
    command = [str(tool), "-r", str(ROOT / "requirements" / "dev.txt"), "--require-hashes", "--disable-pip"]
    done = subprocess.run(
        [*command, "--format", "json", "--progress-spinner", "off"],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=ROOT,
    )  # fmt: skip
    return pip_verdict(_json(done.stdout), done.stderr)


def run_npm() -> tuple[str, str]:
    if not shutil.which("npm"):
        return NOT_RUN, "npm is not installed"
    done = subprocess.run(
        ["npm", "audit", "--json", "--package-lock-only"],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=ROOT / "frontend",
    )  # fmt: skip
    return npm_verdict(_json(done.stdout))


def main() -> int:
    required = os.environ.get("MDSTACK_REQUIRE_AUDIT") == "1"
    failed = False
    for name, check in (("python", run_pip), ("npm", run_npm)):
        verdict, detail = check()
        label = "AUDIT NOT RUN" if verdict == NOT_RUN else f"audit {verdict}"
        sys.stdout.write(f"{label} ({name}): {detail}\n")
        failed |= verdict == FOUND or (verdict == NOT_RUN and required)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
