"""Resume with Last-Event-ID: exactly the missed events, then live ones; `reset` when history was trimmed."""

from __future__ import annotations

import anyio
import orjson
import pytest
import redis.asyncio as aioredis

from harness.sse import event_frame, fields
from services.common.keys import Keys
from services.common.settings import Settings
from tests.realtime_gateway.helpers import Gateway, Publisher, make_env, open_stream, sample, wait_until

pytestmark = pytest.mark.anyio


async def test_resume_gets_exactly_the_missed_events_then_live_ones(gateway: Gateway, publisher: Publisher) -> None:
    with anyio.fail_after(15):
        async with gateway.http() as http:
            async with open_stream(http) as reader:
                first = await publisher.one(n=0)
                assert fields(await reader.event())["id"] == first
            missed_envs = [make_env(n=n) for n in range(1, 6)]
            missed = await publisher.many(missed_envs)  # published while disconnected
            replayed_before = sample("mdstack_gateway_replayed_events_total", {"cause": "resume"})
            async with open_stream(http, headers={"Last-Event-ID": first}) as reader:
                assert await reader.events(5) == [event_frame(i, e) for i, e in zip(missed, missed_envs, strict=True)]
                live_envs = [make_env(n=6), make_env(n=7)]
                live = await publisher.many(live_envs)
                assert await reader.events(2) == [event_frame(i, e) for i, e in zip(live, live_envs, strict=True)]
    assert sample("mdstack_gateway_replayed_events_total", {"cause": "resume"}) - replayed_before == 5


async def test_resume_by_query_applies_the_filters_to_the_replay(gateway: Gateway, publisher: Publisher) -> None:
    start = await publisher.one(symbol="ETHUSDT")
    envs = [make_env(symbol=s, n=n) for n, s in enumerate(["BTCUSDT", "ETHUSDT", "BTCUSDT", "SOLUSDT"])]
    ids = await publisher.many(envs)
    with anyio.fail_after(10):
        async with gateway.http() as http:
            async with open_stream(http, f"?symbols=BTCUSDT&last_event_id={start}") as reader:
                assert await reader.events(2) == [event_frame(ids[0], envs[0]), event_frame(ids[2], envs[2])]
                live = await publisher.many([make_env(symbol="ETHUSDT"), make_env(symbol="BTCUSDT", n=9)])
                assert fields(await reader.event())["id"] == live[1]


async def test_resume_while_events_keep_coming_has_no_gap_and_no_duplicate(
    gateway: Gateway, publisher: Publisher
) -> None:
    total, resume_at = 400, 100
    ids: list[str] = []

    async def publish_steadily() -> None:
        for n in range(total):
            ids.extend(await publisher.many([make_env(n=n)]))
            if n % 10 == 0:
                await anyio.sleep(0.002)

    with anyio.fail_after(30):
        async with gateway.http() as http, anyio.create_task_group() as tasks:
            tasks.start_soon(publish_steadily)
            while len(ids) <= resume_at:
                await anyio.sleep(0.001)
            async with open_stream(http, headers={"Last-Event-ID": ids[resume_at]}) as reader:
                # A count, not "until the last id": an event can arrive before its publish call has returned
                # its id to `ids`, and waiting for one more would never end.
                got = [fields(await reader.event())["id"] for _ in range(total - resume_at - 1)]
    assert got == ids[resume_at + 1 :]


async def test_resume_from_a_trimmed_id_gets_reset_then_the_retained_events(
    gateway: Gateway, publisher: Publisher, redis_client: aioredis.Redis, settings: Settings
) -> None:
    envs = [make_env(n=n) for n in range(5)]
    ids = await publisher.many(envs)
    await redis_client.xtrim(Keys(settings.KEY_PREFIX).history, maxlen=2, approximate=False)
    with anyio.fail_after(10):
        async with gateway.http() as http, open_stream(http, headers={"Last-Event-ID": ids[0]}) as reader:
            reset = await reader.event()
            assert await reader.events(2) == [event_frame(ids[3], envs[3]), event_frame(ids[4], envs[4])]
            live = await publisher.one(n=5)
            assert fields(await reader.event())["id"] == live
    assert reset.startswith(b"event: reset\ndata: ")
    assert "id" not in fields(reset)  # the client keeps its Last-Event-ID
    body = orjson.loads(fields(reset)["data"])
    assert body["reason"] == "history_trimmed"
    assert body["last_event_id"] == ids[0]
    assert body["oldest_event_id"] == ids[3]
    assert "missed" in body["detail"]


async def test_resume_from_the_newest_retained_id_after_a_trim_is_not_a_reset(
    gateway: Gateway, publisher: Publisher, redis_client: aioredis.Redis, settings: Settings
) -> None:
    ids = await publisher.many([make_env(n=n) for n in range(5)])
    await redis_client.xtrim(Keys(settings.KEY_PREFIX).history, maxlen=2, approximate=False)
    with anyio.fail_after(10):
        async with gateway.http() as http, open_stream(http, headers={"Last-Event-ID": ids[3]}) as reader:
            assert fields(await reader.event())["id"] == ids[4]


async def test_resume_from_the_newest_id_replays_nothing_and_continues_live(
    gateway: Gateway, publisher: Publisher
) -> None:
    ids = await publisher.many([make_env(n=n) for n in range(3)])
    with anyio.fail_after(10):
        async with gateway.http() as http, open_stream(http, headers={"Last-Event-ID": ids[-1]}) as reader:
            live = await publisher.one(n=3)
            assert fields(await reader.event())["id"] == live


async def test_resume_stops_at_sse_history_events_and_says_reset(
    start_gateway, settings: Settings, publisher: Publisher
) -> None:
    settings.SSE_HISTORY = 3  # MAXLEN ~ keeps whole stream nodes, so all 10 events stay in Redis
    gateway = start_gateway(settings)
    envs = [make_env(n=n) for n in range(10)]
    received = sample("mdstack_gateway_events_received_total")
    ids = await publisher.many(envs)
    # The hub has had all 10 off pub/sub: else, on a busy machine, a late one reaches the client as live.
    await wait_until(lambda: sample("mdstack_gateway_events_received_total") >= received + 10)
    with anyio.fail_after(10):
        async with gateway.http() as http, open_stream(http, headers={"Last-Event-ID": ids[0]}) as reader:
            assert await reader.events(3) == [event_frame(ids[i], envs[i]) for i in (1, 2, 3)]
            reset = fields(await reader.event())
            live = await publisher.one(n=10)
            assert fields(await reader.event())["id"] == live
    assert reset["event"] == "reset"
    body = orjson.loads(reset["data"])
    assert (body["reason"], body["last_event_id"]) == ("too_far_behind", ids[3])
