"""The hub's single subscription: it comes back by itself and replays what it missed."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import redis.asyncio as aioredis

from harness.sse import fields
from services.common.embedded import EmbeddedRedis
from services.common.settings import Settings
from tests.realtime_gateway.helpers import Gateway, Publisher, make_env, open_stream, sample, wait_until

pytestmark = pytest.mark.anyio
RECONNECTS = "mdstack_gateway_redis_reconnects_total"


async def test_hub_resubscribes_after_its_connection_is_killed_and_clients_miss_nothing(
    gateway: Gateway, publisher: Publisher, redis_client: aioredis.Redis, settings: Settings
) -> None:
    reconnects_before = sample(RECONNECTS)
    with anyio.fail_after(20):
        async with gateway.http() as http, open_stream(http) as reader:
            first = await publisher.one(n=0)
            assert fields(await reader.event())["id"] == first
            hub_connections = [
                c
                for c in await redis_client.client_list(_type="pubsub")
                if c["name"] == f"gateway:{settings.PUBSUB_CHANNEL}"
            ]
            assert len(hub_connections) == 1
            await redis_client.client_kill_filter(_id=hub_connections[0]["id"])
            while_away = await publisher.many([make_env(n=1), make_env(n=2)])
            await wait_until(lambda: sample(RECONNECTS) > reconnects_before, timeout=15)
            live = await publisher.many([make_env(n=3), make_env(n=4)])
            got = [fields(f)["id"] for f in await reader.events(4)]
    assert got == while_away + live


async def test_message_that_is_not_an_envelope_is_counted_and_skipped(
    gateway: Gateway, publisher: Publisher, redis_client: aioredis.Redis, settings: Settings
) -> None:
    bad_before = sample("mdstack_gateway_bad_envelopes_total")
    with anyio.fail_after(10):
        async with gateway.http() as http, open_stream(http) as reader:
            for raw in (b"not json", b"[1, 2]", b'{"type": "tick.received"}', b'{"id": "1-0", "type": "a\\nb"}'):
                await redis_client.publish(settings.PUBSUB_CHANNEL, raw)
            good = await publisher.one()
            assert fields(await reader.event())["id"] == good
    assert sample("mdstack_gateway_bad_envelopes_total") - bad_before == 4


@pytest.mark.e2e
async def test_hub_comes_back_after_redis_restarts_and_replays_what_was_published_meanwhile(
    start_gateway, settings: Settings, tmp_path: Path
) -> None:
    server = EmbeddedRedis(tmp_path, appendonly=True)  # our own server: this test stops it
    url = server.start()
    local = Settings(**{**settings.model_dump(), "REDIS_URL": url, "READINESS_CACHE_S": 0})  # each probe fresh
    client = aioredis.Redis.from_url(url)
    publisher = Publisher(client, local)
    reconnects_before = sample(RECONNECTS)
    try:
        gateway = start_gateway(local)
        with anyio.fail_after(30):
            async with gateway.http() as http, open_stream(http) as reader:
                first = await publisher.one(n=0)
                assert fields(await reader.event())["id"] == first
                await anyio.to_thread.run_sync(server.stop)
                down = await http.get("/health/readiness")
                await anyio.to_thread.run_sync(server.start)  # same port and data directory
                await client.connection_pool.disconnect()  # the test's own connections went stale
                meanwhile = await publisher.many([make_env(n=n) for n in range(1, 4)])
                assert [fields(f)["id"] for f in await reader.events(3)] == meanwhile
                await wait_until(lambda: sample(RECONNECTS) > reconnects_before, timeout=15)
                live = await publisher.one(n=4)
                assert fields(await reader.event())["id"] == live
                up = await http.get("/health/readiness")
    finally:
        await client.aclose()
        server.stop()
    assert down.status_code == 503
    assert [p.split(":")[0] for p in down.json()["problems"]] == ["redis"]
    assert up.status_code == 200
