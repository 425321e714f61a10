"""Ticks go out merged per symbol (`ticks.merged`), and one by one only while a client asks (ingest/merged.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import httpx
import orjson
import pytest
import redis

from services.common.contract import ENVELOPE
from services.common.keys import Keys
from services.common.settings import Settings
from services.orchestrator_api.app import create_app
from services.orchestrator_api.defaults import IDLE_FLAG_ROUNDS
from services.orchestrator_api.ingest.merged import TickMerger
from tests.factories import make_tick

pytestmark = pytest.mark.anyio
T0 = 1_767_323_045_000


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, TickMerger]]:
    """The API in process, and its merger (rounds by hand when TICK_MERGE_MS is long)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        auth = (settings.INGEST_USERNAME, settings.INGEST_PASSWORD)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api", auth=auth) as api:
            yield api, app.state.mdstack.committer.merger


def published(client: redis.Redis, settings: Settings) -> list[dict]:
    """Every envelope in the resume history, with its id, each checked against the contract."""
    out = []
    for entry_id, fields in client.xrange(Keys(settings.KEY_PREFIX).history):
        env = {"id": entry_id.decode(), **orjson.loads(fields[b"e"])}
        ENVELOPE.validate_python(env)
        out.append(env)
    return out


async def round_(merger: TickMerger) -> int:
    return await anyio.to_thread.run_sync(merger.publish)


async def test_ticks_of_several_requests_go_out_as_one_merged_event_per_symbol(
    settings: Settings, client: redis.Redis
) -> None:
    settings.TICK_MERGE_MS = 600_000.0  # no round but ours
    a = [make_tick(symbol="AAA", price=p, volume=v, ts=T0 + t) for p, v, t in ((10, 1, 300), (12, 2, 100), (9, 3, 200))]
    b = [make_tick(symbol="BBB", price=50, volume=0.5, ts=T0)]
    async with running(settings) as (api, merger):
        await round_(merger)  # the start's round may still be running: nothing is merged yet either way
        assert (await api.post("/ingest/ticks", json=[a[0], b[0]])).json()["accepted"] == 2
        assert (await api.post("/ingest/tick", json=a[1])).json()["accepted"] == 1
        assert (await api.post("/ingest/ticks", json=[a[2], a[0]])).json() == {  # a[0] again: a duplicate
            "accepted": 1,
            "duplicates": 1,
            "rejected": [],
        }
        assert published(client, settings) == []  # nothing per tick: no client asked
        assert await round_(merger) == 2
        assert await round_(merger) == 0  # nothing new: no event

    events = {e["symbol"]: e for e in published(client, settings)}
    assert {e["type"] for e in events.values()} == {"ticks.merged"}
    assert events["AAA"]["data"] == {
        "symbol": "AAA",
        "open": 12.0,  # the earliest tick by time, not by arrival
        "high": 12.0,
        "low": 9.0,
        "close": 10.0,
        "volume": 6.0,  # the duplicate counts once
        "count": 3,
        "first_ts": T0 + 100,
        "last_ts": T0 + 300,
        "last_event_id": a[0]["event_id"],
    }
    assert events["BBB"]["data"]["count"] == 1


async def test_tick_received_goes_out_one_by_one_only_while_a_client_asks(
    settings: Settings, client: redis.Redis
) -> None:
    settings.TICK_MERGE_MS = 600_000.0
    wanted = Keys(settings.KEY_PREFIX).ticks_wanted
    async with running(settings) as (api, merger):
        client.set(wanted, 1, ex=30)  # what a gateway does while a client names tick.received
        await round_(merger)
        asked = [make_tick(symbol="AAA", ts=T0 + i) for i in range(3)]
        await api.post("/ingest/ticks", json=asked)
        client.delete(wanted)  # the last such client went, and the flag expired
        await round_(merger)
        await api.post("/ingest/ticks", json=[make_tick(symbol="AAA", ts=T0 + 10)])
        await round_(merger)

    events = published(client, settings)
    per_tick = [e["data"]["event_id"] for e in events if e["type"] == "tick.received"]
    assert per_tick == [t["event_id"] for t in asked]
    assert [e["data"]["count"] for e in events if e["type"] == "ticks.merged"] == [3, 1]


async def test_merged_events_follow_the_cadence_not_the_requests(settings: Settings, client: redis.Redis) -> None:
    settings.TICK_MERGE_MS = 100.0
    started = time.monotonic()
    async with running(settings) as (api, _):
        for i in range(60):
            await api.post("/ingest/tick", json=make_tick(symbol="AAA", ts=T0 + i))
        elapsed = time.monotonic() - started
    # The stop publishes what the last round had not: every tick is in exactly one event.
    merged = [e["data"] for e in published(client, settings) if e["type"] == "ticks.merged"]
    assert sum(m["count"] for m in merged) == 60
    assert len(merged) <= elapsed / 0.1 + 2
    assert merged[-1]["last_ts"] == T0 + 59


class CountingMerger(TickMerger):
    """The real merger, counting its rounds."""

    rounds = 0

    def publish(self) -> int:
        self.rounds += 1
        return super().publish()


async def test_an_idle_merger_reads_the_flag_every_few_rounds_and_still_notices_the_ask(
    settings: Settings, client: redis.Redis
) -> None:
    settings.TICK_MERGE_MS = 50.0
    merger = CountingMerger(settings, client)
    await merger.start()
    try:
        await anyio.sleep(1.0)  # 20 intervals idle: a round every IDLE_FLAG_ROUNDS of them, 5 (fewer if slow)
        assert 1 <= merger.rounds <= 20 // IDLE_FLAG_ROUNDS + 1
        client.set(Keys(settings.KEY_PREFIX).ticks_wanted, b"1", ex=30)
        with anyio.fail_after(5):
            while not merger.per_tick:
                await anyio.sleep(0.02)
    finally:
        await merger.stop()


async def test_a_tick_wakes_an_idle_merger_at_once_rather_than_at_its_next_flag_read(
    settings: Settings, client: redis.Redis
) -> None:
    settings.TICK_MERGE_MS = 200.0  # idle, the flag is read every 800 ms
    merger = CountingMerger(settings, client)
    await merger.start()
    try:
        with anyio.fail_after(5):
            while merger.rounds < 2:  # just after an idle round: the next flag read is 800 ms away
                await anyio.sleep(0.005)
        added = time.monotonic()
        merger.add([{"symbol": "AAA", "price": 1.0, "volume": 1.0, "ts": T0, "event_id": "e1"}])
        with anyio.fail_after(5):
            while merger.rounds < 3:
                await anyio.sleep(0.005)
        # Woken by the tick, the round comes one merge interval later; asleep, it would be the flag's 800 ms.
        assert time.monotonic() - added < 0.6
        merged = [e["data"] for e in published(client, settings) if e["type"] == "ticks.merged"]
        assert [m["count"] for m in merged] == [1]
    finally:
        await merger.stop()
