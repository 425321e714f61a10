"""The tick-path benchmark in its reduced form, so it never rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_tick_path_bench_short_run_delivers_everything_once(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.tick_path", "--duration", "2", "--tps", "100", "--json", str(out)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads(out.read_text())
    assert result["sent"] == result["acknowledged"] == result["persisted"] == 200
    assert result["duplicates_in_postgres"] == 0
    assert result["acknowledged_missing_in_postgres"] == 0
    assert result["views_received"] > 0
    assert set(result["ack_latency_ms"]) == {"p50", "p95", "p99", "max"}


def test_baselines_short_run_reports_rates_and_the_ratio(tmp_path: Path) -> None:
    out = tmp_path / "baselines.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.baselines", "--duration", "1", "--connections", "10", "--json", str(out)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads(out.read_text())
    assert result["bare_fastapi_post"]["req_per_s"] > 0
    assert result["ingest_single_tick"]["req_per_s"] > 0
    assert result["ingest_single_tick"]["non_2xx"] == 0  # every request a new, valid tick
    assert result["ingest_vs_bare"] == round(
        result["ingest_single_tick"]["req_per_s"] / result["bare_fastapi_post"]["req_per_s"], 3
    )
    assert result["raw_copy"]["rows_per_s"] > 0
