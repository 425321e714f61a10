"""Trade-pipeline monitoring end to end: a seeded feeder run through real processes.

After the run, what the monitor says (Postgres rows, snapshot, stuck list, a
trade's trace, rttm.metrics over SSE) must match what the feeder reports it sent.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import orjson
import psycopg
import pytest

from harness.http import client_tls
from harness.sse import SSEReader, fields
from harness.stack import Stack
from services.common.settings import Settings
from tests.keys import unbounded_keys

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]
STAGES = [
    "simulation-service",
    "trade-capture-service",
    "validation-service",
    "pms-core-service",
    "analytics-service",
    "leaderboard-service",
]
TABLES = {
    "trade": "rttm_trade_events",
    "queue": "rttm_queue_metrics",
    "dlq": "rttm_dlq_events",
    "error": "rttm_error_events",
    "log": "rttm_parsed_logs",
}


@pytest.fixture
def stack(settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(settings, tmp_path)
    s.env.update(RTTM_STUCK_AFTER_S="2", RTTM_FINALIZE_GRACE_S="0.5", RTTM_TICK_S="0.5", RTTM_ALERT_STUCK_TRADES="0")
    try:
        s.up()
        yield s
    finally:
        s.stop_all()


def persisted(settings: Settings) -> dict[str, dict[str, int]]:
    """event_id -> rows, per kind."""
    with psycopg.connect(settings.pg_dsn) as conn:
        return {
            kind: dict(conn.execute(f"SELECT event_id, count(*) FROM {table} GROUP BY event_id").fetchall())
            for kind, table in TABLES.items()
        }


async def test_seeded_run_matches_what_the_monitor_reports(stack: Stack, settings: Settings, tmp_path: Path) -> None:
    received: list[dict] = []
    connected = asyncio.Event()

    async def listen(client: httpx.AsyncClient) -> None:
        params = {"types": "rttm.metrics,alert.fired"}
        async with client.stream("GET", f"{stack.gateway_url}/stream", params=params) as response:
            reader = SSEReader(response)
            await reader.connected()
            connected.set()
            while True:
                received.append(orjson.loads(fields(await reader.event())["data"]))

    acked_file, summary_file = tmp_path / "acked-events.txt", tmp_path / "summary.json"
    async with httpx.AsyncClient(timeout=None, verify=client_tls()) as client:
        listener = asyncio.create_task(listen(client))
        with anyio.fail_after(30):
            await connected.wait()  # subscribed before the first event
        feeder = await anyio.run_process(
            [
                *(sys.executable, "-m", "services.feeder", "--duration", "3", "--tps", "5", "--seed", "11"),
                *("--trade-tps", "40", "--fail-rate", "0.1", "--error-rate", "0.05", "--stuck-rate", "0.05"),
                *("--quiet", "--acked-events", str(acked_file), "--summary-json", str(summary_file)),
            ],
            env=stack.env,
            check=False,
        )
        assert feeder.returncode == 0, feeder.stderr.decode()[-3000:]
        summary = orjson.loads(summary_file.read_text())
        trades = summary["trades"]
        acked: dict[str, set[str]] = {kind: set() for kind in TABLES}
        for line in acked_file.read_text().splitlines():
            kind, event_id = line.split()
            acked[kind].add(event_id)
        unfinished = trades["started"] - trades["completed"] - trades["failed"]
        assert trades["failed"] > 0
        assert unfinished > 0

        async def metrics() -> dict:
            return (await client.get(f"{stack.api_url}/rttm/metrics")).json()

        with anyio.fail_after(30):  # persisted, measured, and old enough to count as stuck
            while True:
                rows = persisted(settings)
                snap = await metrics()
                if (
                    all(set(rows[k]) == acked[k] for k in TABLES)
                    and snap.get("stuck", {}).get("count") == unfinished
                    and snap["trades"]["completed"] == trades["completed"]
                ):
                    break
                await asyncio.sleep(0.5)
        with anyio.fail_after(30):  # the alert and a few snapshots have reached the listener
            while not ("alert.fired" in (types := [e["type"] for e in received]) and types.count("rttm.metrics") >= 4):
                await asyncio.sleep(0.1)
        listener.cancel()

        # Every acknowledged event is in its table exactly once.
        rows = persisted(settings)
        for kind in TABLES:
            assert rows[kind] == dict.fromkeys(acked[kind], 1), kind
        assert len(acked["dlq"]) == trades["failed"]
        snap = await metrics()
        assert snap["trades"]["failed"] == trades["failed"]
        assert snap["dlq"]["in_window"] == trades["failed"]
        assert snap["errors"]["in_window"] == len(acked["error"])
        assert snap["latency_ms"]["end_to_end"]["count"] == trades["completed"]
        assert snap["pipeline"]["partitions"]
        stuck = (await client.get(f"{stack.api_url}/rttm/stuck", params={"limit": 1000})).json()
        assert stuck["count"] == unfinished
        assert [a["rule"] for a in snap["alerts"]] == ["stuck_trades"]

        # The trace of a completed trade: its six stages in order, latencies from their event times.
        with psycopg.connect(settings.pg_dsn) as conn:
            [(trade_id,)] = conn.execute(
                "SELECT trade_id FROM rttm_trade_events WHERE event_type = 'LEADERBOARD_UPDATED' "
                "ORDER BY event_time LIMIT 1"
            ).fetchall()
            sent = conn.execute(
                "SELECT event_id, (extract(epoch FROM event_time) * 1000)::bigint FROM rttm_trade_events "
                "WHERE trade_id = %s ORDER BY event_time, event_key",
                (trade_id,),
            ).fetchall()
        trace = (await client.get(f"{stack.api_url}/rttm/trades/{trade_id}")).json()
        assert trace["status"] == "completed"
        assert [e["service_name"] for e in trace["events"]] == STAGES
        assert {event_id for event_id, _ in sent} <= acked["trade"]
        times = [t for _, t in sent]
        assert [e["event_time"] for e in trace["events"]] == times
        assert [e["stage_latency_ms"] for e in trace["events"]] == [None] + [
            b - a for a, b in zip(times, times[1:], strict=False)
        ]

        # The snapshot streamed about once a tick; the alert came through the same filter.
        types = [e["type"] for e in received]
        assert types.count("rttm.metrics") >= 4
        assert "alert.fired" in types
        assert set(types) <= {"rttm.metrics", "alert.fired"}
        assert unbounded_keys(settings) == [], "Redis keys that would grow forever"
