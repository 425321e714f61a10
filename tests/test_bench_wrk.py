"""The wrk batch generator (bench/wrk/batch.lua) against the real stack: paced, every tick unique and accounted."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.wrk_batches import run_batches
from harness.polling import until
from harness.stack import Stack
from services.common.settings import Settings
from services.feeder.walk import PROFILES

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(settings, tmp_path)
    try:
        s.up(workers=1)
        yield s
    finally:
        s.stop_all()


def rows_of_run(settings: Settings, run_id: str) -> list[tuple[str, str, float]]:
    with psycopg.connect(settings.pg_dsn) as conn:
        return conn.execute(  # type: ignore[return-value]
            "SELECT event_id, symbol, extract(epoch FROM ts) * 1000 FROM md_ticks WHERE event_id LIKE %s",
            (run_id + "-%",),
        ).fetchall()


def test_wrk_batches_are_paced_unique_and_each_acknowledged_tick_is_stored_once(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    tps, batch, seconds, connections = 1000, 20, 1.5, 2
    run_id = f"wrktest{uuid.uuid4().hex[:8]}"
    started_ms = time.time() * 1000
    figures, acked = run_batches(
        stack.api_url, settings.INGEST_USERNAME, settings.INGEST_PASSWORD,
        tps=tps, batch=batch, seconds=seconds, connections=connections, run_id=run_id, log=tmp_path / "wrk.log",
    )  # fmt: skip
    # The schedule, not the machine's speed, sets the count: each thread's slots over `seconds`, staggered.
    assert figures["sent_ticks"] == tps * seconds == len(acked) == figures["acked_ticks"]
    assert figures["sent_requests"] == figures["answered"] == math.ceil(tps * seconds / batch)
    assert figures["non_2xx"] == figures["duplicates"] == figures["socket_errors"] == figures["unanswered"] == 0
    assert len(set(acked)) == len(acked)
    assert set(figures["ack_latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert figures["generator"]["cpu_s"] > 0

    until(lambda: len(rows_of_run(settings, run_id)) >= len(acked), timeout=30, what="every tick in Postgres")
    rows = rows_of_run(settings, run_id)
    assert sorted(r[0] for r in rows) == sorted(acked)  # every acknowledged tick once, nothing else
    assert {r[1] for r in rows} <= set(PROFILES)
    assert all(started_ms - 1000 <= r[2] <= started_ms + (seconds + 1) * 1000 for r in rows)  # ts: its send time
