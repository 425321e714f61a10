"""The fan-out benchmark in its reduced form, so it never rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_fanout_bench_short_run_delivers_every_event_to_every_client(tmp_path: Path) -> None:
    out = tmp_path / "fanout.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.fanout", "--clients", "50", "--rate", "20", "--duration", "3",
         "--client-procs", "1", "--json", str(out)],
        capture_output=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads(out.read_text())
    assert result["clients_connected"] == 50
    assert result["connect_failures"] == 0
    assert result["published"] == 60
    assert result["expected_deliveries"] == result["deliveries"] == 60 * 50
    assert result["missing"] == result["extra"] == 0
    assert result["clients_complete"] == 50
    assert result["overflow_notices"] == result["closed_early"] == result["bad_frames"] == 0
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert latency["p99"] < 5000  # generous: a slow CI machine must not fail it
    assert result["deliveries_per_s"] > 0
    rss = result["gateway_rss_mb"]
    assert set(rss) == {"before_clients", "clients_connected", "after_publish", "after_clients_left"}
    assert all(mb > 0 for mb in rss.values())
    assert set(result["targets"]) == {"deliveries_per_s_ge_30000", "p99_le_150ms", "memory_flat"}
