"""The hub writes live frames to the sockets itself (direct.py, groups.py), conflating once per group.

These fail if uvicorn's connection cycle loses what `direct.writer_for` reads
(its `transport`, `chunked_encoding`, `response_started`, `response_complete`):
every stream would then stay on the queue path, which works but costs a task
wake-up per client per event.
"""

from __future__ import annotations

import anyio
import pytest

from harness.sse import event_frame, fields
from services.realtime_gateway.direct import chunk
from services.realtime_gateway.hub import Client, Hub
from tests.realtime_gateway.helpers import Gateway, Publisher, make_env, open_stream, sample, wait_until

pytestmark = pytest.mark.anyio
DELIVERED = "mdstack_gateway_frames_delivered_total"
CONFLATED = "mdstack_gateway_conflated_total"


def hub_of(gateway: Gateway) -> Hub:
    return gateway.app.state.gateway.hub  # type: ignore[no-any-return]


def streams(gateway: Gateway) -> list[Client]:
    return [client for group in list(hub_of(gateway).groups.values()) for client in (*group.queued, *group.live)]


def all_live(gateway: Gateway, count: int) -> bool:
    clients = streams(gateway)
    return len(clients) == count and all(c.writer is not None for c in clients)


def test_a_chunk_is_what_uvicorn_writes_for_one_body_message() -> None:
    assert chunk(b"id: 1-0\n\n") == b"9\r\nid: 1-0\n\n\r\n"
    assert chunk(b"x" * 300) == b"12c\r\n" + b"x" * 300 + b"\r\n"


async def test_a_live_stream_is_written_by_the_hub_and_gets_every_frame_as_published(
    gateway: Gateway, publisher: Publisher
) -> None:
    envs = [make_env(symbol=("BTCUSDT", "ETHUSDT")[n % 2], n=n) for n in range(50)]
    with anyio.fail_after(15):
        async with gateway.http() as http, open_stream(http) as reader, open_stream(http, "?symbols=ETHUSDT") as eth:
            await wait_until(lambda: all_live(gateway, 2))
            before = sample(DELIVERED)
            ids = await publisher.many(envs)
            assert await reader.events(50) == [event_frame(i, env) for i, env in zip(ids, envs, strict=True)]
            assert await eth.events(25) == [event_frame(ids[n], envs[n]) for n in range(1, 50, 2)]
            assert [c.written for c in streams(gateway)] == [ids[-1], ids[-1]]
            assert sample(DELIVERED) == before + 75


async def test_a_resumed_stream_replays_then_goes_direct_without_a_gap_or_a_duplicate(
    gateway: Gateway, publisher: Publisher
) -> None:
    with anyio.fail_after(15):
        earlier = await publisher.many([make_env(n=n) for n in range(5)])
        async with gateway.http() as http, open_stream(http, f"?last_event_id={earlier[1]}") as reader:
            assert [fields(f)["id"] for f in await reader.events(3)] == earlier[2:]
            await wait_until(lambda: all_live(gateway, 1))
            later = await publisher.many([make_env(n=n) for n in range(5, 8)])
            assert [fields(f)["id"] for f in await reader.events(3)] == later


async def test_conflated_streams_of_one_group_are_conflated_once_and_get_the_same_newest_events(
    gateway: Gateway, publisher: Publisher
) -> None:
    with anyio.fail_after(15):
        async with (
            gateway.http() as http,
            open_stream(http, "?conflate=1s") as first,
            open_stream(http, "?conflate=1s") as second,
        ):
            await wait_until(lambda: all_live(gateway, 2))
            (group,) = hub_of(gateway).groups.values()
            assert len(group.live) == 2
            before = sample(CONFLATED)
            opening = await publisher.many([make_env(symbol="BTCUSDT", n=0)])  # idle: goes out at once
            burst = await publisher.many([make_env(symbol=s, n=n) for n in range(1, 7) for s in ("BTCUSDT", "ETHUSDT")])
            wanted = [opening[0], burst[-2], burst[-1]]  # then the newest of each symbol when the window ends
            for reader in (first, second):
                assert [fields(f)["id"] for f in await reader.events(3)] == wanted
            assert sample(CONFLATED) == before + 10, "once for the group, not once per client"
