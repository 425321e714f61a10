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
    assert result["sent"] == result["acknowledged"] == result["persisted"] > 0
    # A rate, not a count: a busy machine sends fewer on time, and the feeder says how many it missed.
    assert result["sent"] + result["feeder_missed"] == 200
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


def test_one_command_runs_the_suite_and_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "ceiling,latency,workers", "--json", str(out)],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert "| ceiling, batch POSTs of 100 |" in done.stdout.decode()
    result = json.loads(out.read_text())
    assert set(result["results"]) == {"ceiling", "latency", "workers"}
    steps = result["results"]["ceiling"]["batch_posts"]["steps"] + result["results"]["latency"]["steps"]
    for step in steps:  # every run: each acknowledged tick in Postgres exactly once, latencies measured
        assert step["acknowledged"] == step["persisted"] > 0
        assert step["duplicates_in_postgres"] == step["acknowledged_missing_in_postgres"] == 0
        assert 0 < step["tick_to_sse_ms"]["p50"] <= step["tick_to_sse_ms"]["p99"]
        assert 0 < step["tick_to_postgres_ms"]["p50"] <= step["tick_to_postgres_ms"]["p99"]
    single = result["results"]["ceiling"]["single_tick_posts"]
    assert single["non_2xx"] == single["duplicates_in_postgres"] == 0
    assert single["persisted"] >= single["acknowledged_about"] > 0
    assert all(run["finished"] == run["jobs"] > 0 for run in result["results"]["workers"]["runs"])
    assert all(row["met"] is None for row in result["table"])  # quick runs are not judged
    assert result["machine"]["cpus"] >= 1


def test_cost_bench_measures_every_service_per_persisted_tick(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "cost", "--json", str(out)],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert "| CPU per tick, 100 ticks/s in POSTs of 1 |" in done.stdout.decode()
    assert "| floor per request at 100 single-tick POSTs/s (same feeder, same uvicorn) |" in done.stdout.decode()
    cost = json.loads(out.read_text())["results"]["cost"]
    # The load (feeders, the SSE listener) is not measured; every service and both servers are.
    assert set(cost["measured"]) == {"api", "worker-1", "worker-2", "flusher", "gateway", "redis", "postgres"}
    assert cost["idle"]["ticks"] == 0
    assert cost["idle"]["cores"] >= 0
    for step in cost["steps"]:
        c = step["cost"]
        assert c["ticks"] == step["persisted"] == step["acknowledged"] > 0
        assert set(c["cpu_us_per_tick"]) == {"api", "workers", "flusher", "gateway", "redis", "postgres"}
        assert c["cpu_s"]["api"] > 0
        assert c["cpu_s"]["workers"] > 0
        assert c["total_cpu_us_per_tick"] == pytest.approx(sum(c["cpu_us_per_tick"].values()), rel=0.01, abs=1)
        assert 0 < c["wall_s"]
        assert c["cores"] == pytest.approx(sum(c["cpu_s"].values()) / c["wall_s"], rel=0.05)
        # A single-tick rate has its floor: the same feeder, at the same rate, against the two bare apps.
        assert ("floor" in step) == (step["batch"] == 1)
        for app in ("raw_asgi", "bare_fastapi") if step["batch"] == 1 else ():
            f = step["floor"][app]
            assert f["answered"] == f["requests"] > 0
            assert f["cpu_s"] > 0
