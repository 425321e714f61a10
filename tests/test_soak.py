"""The soak benchmark in its short CI form: ~25 s at ~200 ticks/s, windows shortened so plateaus come early.

It runs on an embedded redis-server of its own (REDIS_URL unset for the
bench), so Redis' used_memory is this stack's alone, whoever else shares the
machine's Redis; Postgres is the shared server, in a scratch database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from statistics import fmean
from typing import Any

import pytest
from filelock import FileLock

from services.common.keys import FAMILIES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(360)]

MIB = 1024 * 1024
# Above the projection, used_memory holds what no family declares: an empty Redis' own ~1 MiB, RQ's keys,
# client buffers, and on a loaded machine a queue of batches the workers have not reached yet.
SLACK_BYTES = 6 * MIB
WINDOWS = {"DEDUP_WINDOW_S": "3", "RTTM_RETENTION_S": "6", "SSE_HISTORY_BYTES": str(512 * 1024)}
# TTL-bound families whose window above is a fraction of the run: their key counts must level off.
PLATEAUS = ("dedup", "rttm.trade", "rttm.counters", "rttm.latency")


def keys_over(samples: list[dict[str, Any]], family: str) -> list[int]:
    return [s["redis"]["families"].get(family, {}).get("keys", 0) for s in samples]


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, Any]:
    """One soak run for the whole session: under xdist the first worker to get here runs it, the other reads it."""
    if worker_id == "master":
        return run_soak(tmp_path_factory.mktemp("soak") / "soak.json")
    shared = tmp_path_factory.getbasetemp().parent / "soak.json"  # the session's directory, its workers' own
    with FileLock(f"{shared}.lock"):
        if not shared.exists():  # written only by a run that passed every check of run_soak
            shared.write_text(json.dumps(run_soak(tmp_path_factory.mktemp("soak") / "soak.json")))
        return json.loads(shared.read_text())  # type: ignore[no-any-return]


def run_soak(out: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--minutes", "0.4", "--tps", "200", "--trade-tps", "5",
         "--batch", "10", "--sample-s", "1.5", "--json", str(out),
         *(arg for name, value in WINDOWS.items() for arg in ("--env", f"{name}={value}"))],
        capture_output=True, timeout=330, check=False, env=env,
    )  # fmt: skip
    assert out.exists(), done.stderr.decode()[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["problems"] == [], result["problems"]
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert "| **Redis used_memory** |" in done.stdout.decode()
    return result


def test_soak_reports_every_family_and_no_key_outside_them(soak: dict[str, Any]) -> None:
    rows = {row["family"]: row for row in soak["analysis"]["families"]}
    assert {f.name for f in FAMILIES} <= set(rows)
    assert rows["(unknown)"]["keys_max"] == 0
    for family in FAMILIES:
        if family.bound == "ttl":
            assert rows[family.name]["without_ttl_max"] == 0, family.name
    assert soak["settings"]["DEDUP_WINDOW_S"] == 3  # the overrides reached the projection


def test_soak_persists_every_acknowledged_tick_and_event_once(soak: dict[str, Any]) -> None:
    ticks = soak["delivery"]["ticks"]
    assert ticks["acknowledged"] == soak["feeder"]["acknowledged"] > 2400  # of ~4,800 sent
    assert ticks["persisted"] == ticks["acknowledged"] == ticks["rows"]
    assert ticks["missing"] == ticks["duplicates"] == 0
    for kind, events in soak["delivery"]["events"].items():
        assert events["persisted"] == events["acknowledged"], kind
    assert soak["delivery"]["events"]["trade"]["acknowledged"] > 0


def test_soak_redis_memory_stays_within_the_projection(soak: dict[str, Any]) -> None:
    redis = soak["analysis"]["redis"]
    assert 0 < redis["projected_run"]
    assert redis["used_memory_max_last_third"] <= redis["projected_run"] + SLACK_BYTES, (
        f"used_memory {redis['used_memory_max_last_third'] / MIB:.2f} MiB in the last third of the run,"
        f" projected {redis['projected_run'] / MIB:.2f} MiB"
    )
    events = next(row for row in soak["analysis"]["families"] if row["family"] == "events")
    assert events["bytes_end"] <= 1.2 * 512 * 1024  # the SSE history is capped in bytes


def test_soak_short_windows_level_off(soak: dict[str, Any]) -> None:
    feeding = [s for s in soak["samples"] if s["phase"] == "feed"]
    third = len(feeding) // 3
    middle, last = feeding[third : 2 * third], feeding[2 * third :]
    for family in PLATEAUS:
        before, after = fmean(keys_over(middle, family)), fmean(keys_over(last, family))
        assert before > 0, family
        # A family without its bound grows with time: from the middle to the last third of the run, by ~65%.
        assert after <= 1.3 * before + 3, f"{family}: {before:.1f} keys in the middle third, {after:.1f} in the last"
