"""GET /stream: filters, ids, exact frames, heartbeats, bad parameters, CORS."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
import redis.asyncio as aioredis

from harness.sse import event_frame, fields
from services.common.keys import Keys
from services.common.settings import Settings
from tests.realtime_gateway.helpers import Gateway, Publisher, make_env, open_stream, sample, wait_until

pytestmark = pytest.mark.anyio


async def test_symbol_and_type_filters_deliver_exactly_the_matching_frames(
    gateway: Gateway, publisher: Publisher
) -> None:
    envs = [
        make_env("tick.received", symbol="BTCUSDT"),
        make_env("tick.received", symbol="ETHUSDT"),
        make_env("symbol.updated", symbol="BTCUSDT", last=1.5),
        make_env("symbol.updated", symbol="ETHUSDT", last=2.5),
        make_env("gateway.notice", symbol=None, text="no symbol"),
        make_env("tick.received", symbol="BTCUSDT", price=101.0),  # matches every client below: ends each read
    ]
    wanted = {
        "": [0, 1, 2, 3, 4, 5],
        "?symbols=BTCUSDT": [0, 2, 4, 5],  # an envelope without a symbol passes a symbol filter
        "?symbols=SOLUSDT,BTCUSDT": [0, 2, 4, 5],
        "?types=symbol.updated,tick.received": [0, 1, 2, 3, 5],
        "?symbols=BTCUSDT&types=tick.received": [0, 5],
    }
    with anyio.fail_after(15):
        async with gateway.http() as http:
            async with (
                open_stream(http, "") as all_events,
                open_stream(http, "?symbols=BTCUSDT") as by_symbol,
                open_stream(http, "?symbols=SOLUSDT,BTCUSDT") as by_symbols,
                open_stream(http, "?types=symbol.updated,tick.received") as by_type,
                open_stream(http, "?symbols=BTCUSDT&types=tick.received") as by_both,
            ):
                ids = await publisher.many(envs)
                readers = [all_events, by_symbol, by_symbols, by_type, by_both]
                for reader, (query, indexes) in zip(readers, wanted.items(), strict=True):
                    got = await reader.events(len(indexes))
                    assert got == [event_frame(ids[i], envs[i]) for i in indexes], query


async def test_every_event_id_is_its_history_entry_id_and_data_is_the_published_bytes(
    gateway: Gateway, publisher: Publisher, redis_client: aioredis.Redis, settings: Settings
) -> None:
    with anyio.fail_after(15):
        pubsub = redis_client.pubsub()
        await pubsub.subscribe(settings.PUBSUB_CHANNEL)
        async with gateway.http() as http, open_stream(http) as reader:
            ids = await publisher.many([make_env(symbol=s) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")])
            frames = await reader.events(3)
        published = []
        while len(published) < 3:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                published.append(message["data"])
        await pubsub.aclose()
    history = await redis_client.xrange(Keys(settings.KEY_PREFIX).history)
    assert [f["id"] for f in map(fields, frames)] == [i.decode() for i, _ in history] == ids
    assert [f["data"].encode() for f in map(fields, frames)] == published


async def test_heartbeat_comment_is_sent_every_ping_interval(start_gateway, settings: Settings) -> None:
    settings.SSE_PING_S = 0.2
    gateway = start_gateway(settings)
    with anyio.fail_after(5):
        async with gateway.http() as http, open_stream(http) as reader:
            pings = [await reader.frame() for _ in range(2)]
    assert all(p.startswith(b": ping") and p.endswith(b"\n\n") and p.count(b"\n") == 2 for p in pings), pings


@pytest.mark.parametrize(
    ("query", "headers", "field"),
    [
        ("", {"Last-Event-ID": "not-an-id"}, "Last-Event-ID"),
        ("", {"Last-Event-ID": "1795565084139"}, "Last-Event-ID"),
        ("", {"Last-Event-ID": "99999999999999999999-0"}, "Last-Event-ID"),
        ("?last_event_id=abc-1", {}, "last_event_id"),
        ("?symbols=btc usdt", {}, "symbols"),
        ("?types=tick received", {}, "types"),
    ],
)
async def test_bad_parameter_is_400_naming_the_field(
    gateway: Gateway, query: str, headers: dict[str, str], field: str
) -> None:
    with anyio.fail_after(5):
        async with gateway.http() as http:
            response = await http.get("/stream" + query, headers=headers)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request"
    assert [d["field"] for d in body["detail"]] == [field]
    assert sample("mdstack_gateway_clients") == 0


async def test_header_last_event_id_wins_over_the_query(gateway: Gateway, publisher: Publisher) -> None:
    first, second = await publisher.many([make_env(), make_env()])
    with anyio.fail_after(5):
        async with gateway.http() as http:
            async with open_stream(http, "?last_event_id=0-1", headers={"Last-Event-ID": first}) as reader:
                assert fields(await reader.event())["id"] == second


async def test_stream_allows_the_origins_of_cors_origins(
    start_gateway: Callable[[Settings], Gateway], settings: Settings
) -> None:
    gateway = start_gateway(settings.model_copy(update={"CORS_ORIGINS": "https://dashboard.example"}))
    with anyio.fail_after(5):
        async with gateway.http() as http:
            headers = {"Origin": "https://dashboard.example"}
            async with http.stream("GET", "/stream", headers=headers) as response:
                assert response.headers["access-control-allow-origin"] == "https://dashboard.example"
            preflight = await http.options(
                "/stream",
                headers={
                    **headers,
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "last-event-id",
                },
            )
    assert preflight.status_code == 200
    assert "GET" in preflight.headers["access-control-allow-methods"]


async def test_clients_gauge_follows_connections_back_to_zero(gateway: Gateway) -> None:
    with anyio.fail_after(10):
        async with gateway.http() as http, open_stream(http), open_stream(http, "?types=symbol.updated"):
            assert sample("mdstack_gateway_clients") == 2
        await wait_until(lambda: sample("mdstack_gateway_clients") == 0)
