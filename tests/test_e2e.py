"""The whole tick path as real processes: feeder -> API -> workers + flusher -> Postgres, gateway -> SSE."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import orjson
import psycopg
import pytest
import redis

from harness.http import client_tls
from harness.sse import SSEReader, fields
from harness.stack import Stack
from services.common.keys import Keys
from services.common.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]
SYMBOLS = ("E2EAAA", "E2EBBB", "E2ECCC")
TICKS = 450  # three seconds at 150 ticks/s


@pytest.fixture
def stack(settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(settings, tmp_path)
    try:
        s.up()
        yield s
    finally:
        s.stop_all()


def persisted(settings: Settings) -> dict[str, int]:
    with psycopg.connect(settings.pg_dsn) as conn:
        return dict(conn.execute("SELECT event_id, count(*) FROM md_ticks GROUP BY event_id").fetchall())


def flushed_all(settings: Settings) -> bool:
    """The flusher's stream is empty (an entry leaves it once written and acknowledged) and the backlog is 0."""
    keys = Keys(settings.KEY_PREFIX)
    with contextlib.closing(redis.Redis.from_url(settings.redis_url)) as client:
        return client.xlen(keys.flush_stream) == 0 and int(client.get(keys.backlog) or 0) == 0


async def test_feeder_to_postgres_and_sse(stack: Stack, settings: Settings, tmp_path: Path) -> None:
    updates: dict[str, int] = {}
    connected = asyncio.Event()

    async def listen(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", f"{stack.gateway_url}/stream", params={"types": "symbol.updated"}) as response:
            assert response.status_code == 200
            reader = SSEReader(response)
            await reader.connected()
            connected.set()
            while True:
                envelope = orjson.loads(fields(await reader.event())["data"])
                updates[envelope["symbol"]] = updates.get(envelope["symbol"], 0) + 1

    acked_file, summary_file = tmp_path / "acked.txt", tmp_path / "summary.json"
    async with httpx.AsyncClient(timeout=None, verify=client_tls()) as client:
        listener = asyncio.create_task(listen(client))
        with anyio.fail_after(30):
            await connected.wait()  # subscribed before the first tick
        feeder = await anyio.run_process(
            [
                # A count, not a duration: on a busy machine the feeder falls behind its rate, never short of ticks.
                *(sys.executable, "-m", "services.feeder", "--count", str(TICKS), "--tps", "150", "--seed", "7"),
                *("--symbols", ",".join(SYMBOLS), "--quiet"),
                *("--acked-ids", str(acked_file), "--summary-json", str(summary_file)),
            ],
            env=stack.env,
            check=False,
        )
        assert feeder.returncode == 0, feeder.stderr.decode()[-3000:]
        acked = acked_file.read_text().split()
        with anyio.fail_after(30):
            while set(persisted(settings)) != set(acked) or set(updates) != set(SYMBOLS):
                await asyncio.sleep(0.2)
        listener.cancel()

        summary = orjson.loads(summary_file.read_text())
        assert summary["errors"] == 0
        assert len(acked) == summary["acknowledged"] == TICKS
        assert len(set(acked)) == len(acked)
        with anyio.fail_after(30):
            while not flushed_all(settings):  # then no batch is left that could be written twice
                await asyncio.sleep(0.1)
        assert persisted(settings) == dict.fromkeys(acked, 1)

        for symbol in SYMBOLS:
            history = (await client.get(f"{stack.api_url}/symbols/{symbol}/history", params={"limit": 5})).json()
            assert len(history["ticks"]) == 5
            assert all(t["event_id"] in acked for t in history["ticks"])
            view = (await client.get(f"{stack.api_url}/symbols/{symbol}")).json()
            assert view["symbol"] == symbol
            assert view["price"] > 0
            assert view["trades_1m"] > 0

        async def ticks_in_candles() -> int:
            total = 0
            for symbol in SYMBOLS:
                params = {"interval": "15m"}
                candles = (await client.get(f"{stack.api_url}/symbols/{symbol}/candles", params=params)).json()
                total += sum(c["count"] for c in candles["candles"])
            return total

        # Workers catch up with every acknowledged tick (a 3 s run sits in one or two 15m candles).
        with anyio.fail_after(30):
            while (counted := await ticks_in_candles()) < len(acked):
                await asyncio.sleep(0.2)
        assert counted == len(acked)
