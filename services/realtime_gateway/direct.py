"""Live frames written by the hub straight to each client's socket, with no task woken per client.

Through the ASGI stack, every frame to every client costs a queue put, a task
wake-up, sse-starlette's send and each middleware's wrapper before uvicorn
writes it: ~30 µs per delivery, a whole core at 1,000 clients × 30 events/s
(`python -m bench.fanout`). Once a stream is live (resumed, caught up, not
conflated), the hub instead writes each event's HTTP chunk to the socket of
every matching client itself, in one loop: a `transport.write` each.

This reaches under uvicorn's ASGI `send` for its connection (`RawSend` keeps
the server's own `send` in the scope, before any middleware wraps it) and
uses it only when it is uvicorn's httptools cycle with chunked encoding
already begun; any other server, protocol or state keeps the queue path
(`writer_for` answers None). `tests/realtime_gateway/test_direct.py` fails if
the uvicorn attributes this reads go away.

A client whose socket stops draining shows as bytes waiting in its transport:
past SSE_CLIENT_BUFFER_BYTES the hub drops it as it drops a client whose
queue is full (`overflow`), so memory stays bounded at that many bytes per
client. Headers, pings and control frames still go through the ASGI send.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

RAW_SEND = "mdstack.raw_send"  # scope key: the server's own send for this request
STREAM_PATH = "/stream"


class RawSend:
    """Pure ASGI middleware, outermost: keeps the server's `send` of each `/stream` request in its scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == STREAM_PATH:
            scope[RAW_SEND] = send
        await self.app(scope, receive, send)


@dataclass(slots=True)
class Writer:
    """The socket of one live client and how many bytes may wait in it before the client counts as slow."""

    transport: asyncio.WriteTransport
    limit: int

    def state(self) -> str | None:
        """None when a frame can be written now; "closed" for a gone client; "slow" past the limit."""
        if self.transport.is_closing():
            return "closed"
        if self.transport.get_write_buffer_size() > self.limit:
            return "slow"
        return None


def writer_for(scope: Scope, limit: int) -> Writer | None:
    """A `Writer` for this request's socket, if its server lets the hub write chunks to it; else None.

    Call it after the response's headers went out: uvicorn decides on chunked encoding then.
    """
    cycle = getattr(scope.get(RAW_SEND), "__self__", None)
    transport = getattr(cycle, "transport", None)
    if (
        getattr(cycle, "chunked_encoding", None) is not True
        or getattr(cycle, "response_started", None) is not True
        or getattr(cycle, "response_complete", True) is not False
        or not all(hasattr(transport, name) for name in ("write", "is_closing", "get_write_buffer_size"))
        or transport.is_closing()  # uvloop's transports are not asyncio.WriteTransport subclasses: duck-typed
    ):
        return None
    return Writer(transport, limit)


def chunk(frame: bytes) -> bytes:
    """One HTTP/1.1 chunk carrying `frame`: the bytes uvicorn's send would write for it."""
    return b"%x\r\n%b\r\n" % (len(frame), frame)
