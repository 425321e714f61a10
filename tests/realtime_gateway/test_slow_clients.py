"""A client that stops reading is told `overflow` and dropped; the others keep receiving."""

from __future__ import annotations

import socket

import anyio
import orjson
import pytest

from harness.sse import Frames, fields
from services.common.settings import Settings
from services.realtime_gateway.frames import CONNECTED
from tests.realtime_gateway.helpers import Publisher, make_env, open_stream, sample, wait_until

pytestmark = pytest.mark.anyio
DROPPED = ("mdstack_gateway_clients_dropped_total", {"reason": "slow"})
PAD = "x" * 64_000  # big events fill the socket buffers of a client that does not read in a few MB
MAX_EVENTS = 600


def connect_without_reading(port: int) -> tuple[socket.socket, bytes]:
    """A raw HTTP/1.1 client with a tiny receive buffer; returns once the gateway registered it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    received = b""
    while CONNECTED not in received:
        received += sock.recv(4096)
    return sock, received


def read_to_end(sock: socket.socket, received: bytes) -> bytes:
    while chunk := sock.recv(1 << 20):
        received += chunk
    sock.close()
    return received


def body_frames(raw: bytes) -> list[bytes]:
    """The SSE frames of a chunked HTTP response."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    body = b""
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body, rest = body + rest[:size], rest[size + 2 :]
    return Frames().feed(body)


@pytest.mark.slow  # fills a client queue to overflow
async def test_client_that_stops_reading_gets_overflow_and_is_dropped_while_others_keep_receiving(
    start_gateway, settings: Settings, publisher: Publisher
) -> None:
    settings.SSE_CLIENT_BUFFER = 5
    settings.SSE_SEND_TIMEOUT_S = 60  # the overflow, not the send timeout, must end the slow stream
    gateway = start_gateway(settings)
    dropped_before = sample(*DROPPED)
    ids: list[str] = []
    with anyio.fail_after(60):
        slow, handshake = await anyio.to_thread.run_sync(connect_without_reading, gateway.port)
        async with gateway.http() as http, open_stream(http) as normal:
            assert sample("mdstack_gateway_clients") == 2
            # In lock step with the reading client, so only the slow one can fall behind.
            while sample(*DROPPED) == dropped_before:
                assert len(ids) < MAX_EVENTS, "the slow client was never dropped"
                ids += await publisher.many([make_env(n=len(ids), pad=PAD)])
                assert fields(await normal.event())["id"] == ids[-1]
            after = await publisher.many([make_env(n=n) for n in range(3)])
            assert [fields(f)["id"] for f in await normal.events(3)] == after
            assert sample("mdstack_gateway_clients") == 2  # the slow stream waits for its last frame
            raw = await anyio.to_thread.run_sync(read_to_end, slow, handshake)
            await wait_until(lambda: sample("mdstack_gateway_clients") == 1)
        await wait_until(lambda: sample("mdstack_gateway_clients") == 0)

    frames = body_frames(raw)
    assert frames[0] == CONNECTED
    events = [fields(f) for f in frames[1:-1]]
    overflow = fields(frames[-1])
    assert [e["id"] for e in events] == ids[: len(events)]  # in order, none skipped, then nothing more
    assert len(events) < len(ids)
    assert set(overflow) == {"event", "data"}
    assert overflow["event"] == "overflow"
    body = orjson.loads(overflow["data"])
    assert body["reason"] == "slow_client"
    assert body["last_event_id"] == events[-1]["id"]
    assert sample(*DROPPED) == dropped_before + 1


@pytest.mark.slow  # waits out the send timeout
async def test_client_whose_socket_stays_full_is_cut_off_after_the_send_timeout(
    start_gateway, settings: Settings, publisher: Publisher
) -> None:
    """The watchdog (response.py), not a per-send timer, ends a stream stuck in a send; the others go on."""
    settings.SSE_CLIENT_BUFFER = 100_000  # the queue never overflows: only the send timeout can end it
    settings.SSE_SEND_TIMEOUT_S = 1
    gateway = start_gateway(settings)
    timeouts = ("mdstack_gateway_clients_dropped_total", {"reason": "send_timeout"})
    before = sample(*timeouts)
    with anyio.fail_after(60):
        slow, handshake = await anyio.to_thread.run_sync(connect_without_reading, gateway.port)
        async with gateway.http() as http, open_stream(http) as normal:
            sent = 0
            while sample(*timeouts) == before:  # fill the slow client's socket until its send sticks
                assert sent < MAX_EVENTS, "the stuck client was never cut off"
                ids = await publisher.many([make_env(n=sent, pad=PAD)])
                assert fields(await normal.event())["id"] == ids[-1]
                sent += 1
                if sent % 50 == 0:
                    await anyio.sleep(0.5)  # give the watchdog a look
            await wait_until(lambda: sample("mdstack_gateway_clients") == 1)
            after = await publisher.many([make_env(n=n) for n in range(3)])
            assert [fields(f)["id"] for f in await normal.events(3)] == after
        raw = await anyio.to_thread.run_sync(read_to_end, slow, handshake)  # the gateway closed it
        await wait_until(lambda: sample("mdstack_gateway_clients") == 0)
    assert raw.startswith(b"HTTP/1.1 200")
    assert sample(*timeouts) == before + 1
