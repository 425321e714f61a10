"""The ingest fast path's answers leave in one socket write (fastpath.OneWrite), on a real uvicorn server, with
keep-alive and Connection: close both intact."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from harness.servers import serve
from services.orchestrator_api.ingest.fastpath import OneWrite

BODY = b'{"accepted":1,"duplicates":0,"rejected":[]}'


class Counting:
    """The connection's transport, counting what uvicorn writes to it."""

    def __init__(self, transport: Any, writes: list[bytes]) -> None:
        self.transport, self.writes = transport, writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def app_counting(writes: list[bytes], one_write: bool) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        cycle = send.__self__  # type: ignore[attr-defined]
        if not isinstance(cycle.transport, Counting):
            cycle.transport = Counting(cycle.transport, writes)
        out = OneWrite(send) if one_write else send
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
        await out({"type": "http.response.start", "status": 200, "headers": headers})
        await out({"type": "http.response.body", "body": BODY})

    return app


def exchange(port: int, requests: int, close_last: bool) -> bytes:
    """`requests` POSTs on one connection, the last with Connection: close; everything read until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        received = b""
        for i in range(requests):
            last = i == requests - 1
            connection = b"Connection: close\r\n" if last and close_last else b""
            sock.sendall(b"POST /ingest/tick HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n" + connection + b"\r\n{}")
            while received.count(BODY) <= i:
                chunk = sock.recv(65536)
                assert chunk, "connection closed before the answer"
                received += chunk
        if close_last:
            while chunk := sock.recv(65536):  # the server closes: EOF, nothing after the last answer
                received += chunk
        return received


@pytest.mark.parametrize("one_write", [True, False], ids=["one-write", "uvicorn-as-is"])
def test_each_answer_is_one_write_and_keep_alive_and_close_still_work(one_write: bool) -> None:
    writes: list[bytes] = []
    with serve(app_counting(writes, one_write)) as url:  # type: ignore[arg-type]
        received = exchange(int(url.rsplit(":", 1)[1]), 3, close_last=True)
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert received.count(BODY) == 3
    assert received.rstrip().endswith(BODY)
    assert b"connection: close" in received.lower()
    if one_write:
        assert len(writes) == 3  # head and body together, every time
        assert all(w.startswith(b"HTTP/1.1 200 OK") and w.endswith(BODY) for w in writes)
    else:
        assert len(writes) == 6  # what uvicorn does by itself: the reason for OneWrite


def test_a_body_in_several_parts_goes_through_as_is() -> None:
    writes: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        cycle = send.__self__  # type: ignore[attr-defined]
        cycle.transport = Counting(cycle.transport, writes)
        out = OneWrite(send)
        await out({"type": "http.response.start", "status": 200, "headers": []})
        await out({"type": "http.response.body", "body": b"ab", "more_body": True})
        await out({"type": "http.response.body", "body": b"cd"})

    with serve(app) as url:  # type: ignore[arg-type]
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert received.endswith(b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")  # chunked, as uvicorn writes it
    assert len(writes) == 3
