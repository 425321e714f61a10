"""The fan-out benchmark in its reduced form, so it never rots: the gateway and its nchan peer in one run.

The peer needs nginx with the nchan module (Debian `nginx-light`, `libnginx-mod-nchan`). Where they are
missing the short run checks the "not run" report instead, unless MDSTACK_REQUIRE_NCHAN=1 (CI sets it),
where the peer must have run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import nchan_peer
from bench.__main__ import fanout_rows
from bench.fanout import run_nchan

pytestmark = pytest.mark.e2e

CLIENTS, RATE, DURATION = 50, 20, 3


def assert_delivered_everything(target: dict[str, Any]) -> None:
    assert target["clients_connected"] == CLIENTS
    assert target["connect_failures"] == 0
    assert target["published"] == RATE * DURATION
    assert target["expected_deliveries"] == target["deliveries"] == RATE * DURATION * CLIENTS
    assert target["missing"] == target["extra"] == 0
    assert target["clients_complete"] == CLIENTS
    assert target["overflow_notices"] == target["closed_early"] == target["bad_frames"] == 0
    latency = target["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert latency["p99"] < 5000  # generous: a slow CI machine must not fail it
    assert target["deliveries_per_s"] > 0
    assert target["cpu_s_while_publishing"] > 0
    assert target["cpu_us_per_delivery"] == pytest.approx(
        1e6 * target["cpu_s_while_publishing"] / target["deliveries"], abs=0.01
    )
    rss = target["rss_mb"]
    assert set(rss) == {"before_clients", "clients_connected", "after_publish", "after_clients_left"}
    assert all(mb > 0 for mb in rss.values())


def test_fanout_bench_short_run_delivers_every_event_to_every_client_of_both_targets(tmp_path: Path) -> None:
    out = tmp_path / "fanout.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.fanout", "--clients", str(CLIENTS), "--rate", str(RATE),
         "--duration", str(DURATION), "--client-procs", "1", "--json", str(out)],
        capture_output=True,
        timeout=180,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads(out.read_text())
    assert result["message_bytes"] > 100
    assert_delivered_everything(result["gateway"])
    assert set(result["targets"]) == {
        "deliveries_per_s_ge_30000",
        "p99_le_150ms",
        "memory_flat",
        "cpu_per_delivery_le_1_5x_nchan",
    }
    why = nchan_peer.unavailable()
    if why is None or os.environ.get("MDSTACK_REQUIRE_NCHAN") == "1":
        assert "not_run" not in result["nchan"], f"the nchan peer did not run: {result['nchan']['not_run']}"
        assert_delivered_everything(result["nchan"])
        ratios = result["gateway_vs_nchan"]
        assert set(ratios) == {"p99", "cpu_per_delivery"}
        assert ratios["p99"] > 0
        assert ratios["cpu_per_delivery"] > 0
        assert result["targets"]["cpu_per_delivery_le_1_5x_nchan"] is not None
        table = fanout_rows(result)  # `python -m bench`: both targets in the fan-out row, then their ratio
        assert table[0]["result"].startswith("gateway: ")
        assert "; nchan: " in table[0]["result"]
        assert "not run" not in table[0]["result"]
        assert table[1]["what"] == "fan-out: gateway / nchan"
    else:
        assert result["nchan"] == {"not_run": why}
        assert result["gateway_vs_nchan"] is None
        assert result["targets"]["cpu_per_delivery_le_1_5x_nchan"] is None
        assert f"; nchan: not run: {why}" in fanout_rows(result)[0]["result"]


def peer_args() -> argparse.Namespace:
    return argparse.Namespace(clients=2, rate=1.0, duration=1.0, client_procs=1)


def test_nchan_peer_without_nginx_is_reported_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no-nginx"
    monkeypatch.setenv("NGINX", str(missing))
    assert run_nchan(peer_args(), tmp_path) == {"not_run": f"nginx not found ({missing}; Debian package nginx-light)"}


def test_nchan_peer_without_the_module_is_reported_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "ngx_nchan_module.so"
    monkeypatch.setenv("NCHAN_MODULE", str(missing))
    monkeypatch.setenv("NGINX", sys.executable)  # an executable is all the check before the module asks for
    assert run_nchan(peer_args(), tmp_path) == {
        "not_run": f"nchan module not found ({missing}; Debian package libnginx-mod-nchan)"
    }


def test_nchan_peer_that_nginx_refuses_to_start_is_reported_not_run_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "ngx_nchan_module.so"
    bogus.write_text("not a shared object")
    monkeypatch.setenv("NCHAN_MODULE", str(bogus))
    result = run_nchan(peer_args(), tmp_path)
    if why := nchan_peer.unavailable():  # no nginx here at all (CI has it)
        assert result == {"not_run": why}
    else:
        assert result["not_run"].startswith("nginx exited with 1: ")
        assert f'dlopen() "{bogus}" failed' in result["not_run"]
