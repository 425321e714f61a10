"""POST /ingest/* and /internal/agg-update straight from ASGI, skipping FastAPI's routing and dependency machinery.

A py-spy profile of single-tick ingest under wrk put about 70% of the API's
time between the first middleware and the endpoint (route matching across
every included route, dependency solving, the middleware chain) and under 10%
in the endpoint. At 100 single-tick POSTs/s the workers' agg-update calls (one
per job) took another fifth of the API's CPU, most of it in the same
machinery. This middleware sits outside FastAPI's own middleware stack (see
`common/outer_app.py`) and answers those paths with the very same credential checks and
endpoint functions (`ingest/routes.py`, `views/routes.py`), which also stay
on the router (for the OpenAPI document, and for `INGEST_FASTPATH=false`),
and with the very same error answers (`errors.response`). On the metrics port
it answers nothing: the stack's `PortSplit` refuses them there.

Its answers go out in one socket write (`OneWrite`): uvicorn writes a
response's head when it gets `http.response.start` and its body with the next
message, two `write` calls, and those were a quarter of the API's CPU under
wrk (a system call each; more on a VM).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.metrics_port import came_on
from services.orchestrator_api import errors, metrics
from services.orchestrator_api.state import AppState

Check = Callable[[Request], Awaitable[None]]  # the router's credential dependency: raises to refuse
Endpoint = Callable[[Request, AppState], Awaitable[BaseModel]]
Route = tuple[Check, Endpoint]


class IngestFastPath:
    def __init__(self, app: ASGIApp, routes: Mapping[str, Route], metrics_port: int | None = None) -> None:
        self.app = app
        self.routes = routes
        self.metrics_port = metrics_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST" or came_on(scope, self.metrics_port):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        check, endpoint = route
        request = Request(scope, receive)
        response: Response
        try:
            await check(request)
            result = await endpoint(request, request.app.state.mdstack)
            response = Response(orjson.dumps(result.model_dump()), media_type="application/json")
        except errors.HANDLED as exc:
            response = errors.response(exc)
        await response(scope, receive, OneWrite(send))
        metrics.REQUESTS.labels("POST", scope["path"], str(response.status_code)).inc()
        metrics.REQUEST_SECONDS.labels(scope["path"]).observe(time.perf_counter() - started)


class OneWrite:
    """An ASGI `send` that hands a response's head and single body to the server together, so that uvicorn's
    two `transport.write` calls become one (`Joined`). Any other server, or a body in several parts, goes
    through message by message, as usual."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.head: Message | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and self.head is None:
            self.head = message
            return
        head, self.head = self.head, None
        if head is None:
            await self.send(message)
            return
        cycle = getattr(self.send, "__self__", None)  # uvicorn's RequestResponseCycle (h11 or httptools)
        transport = getattr(cycle, "transport", None)
        if message["type"] != "http.response.body" or message.get("more_body") or not hasattr(transport, "write"):
            await self.send(head)
            await self.send(message)
            return
        joined = Joined(transport)
        cycle.transport = joined  # type: ignore[union-attr]
        try:
            await self.send(head)
            await self.send(message)
        finally:
            cycle.transport = transport  # type: ignore[union-attr]
            joined.flush()


class Joined:
    """Stands in for a connection's transport while uvicorn writes one response: the writes are joined, and
    a close (Connection: close) waits for them."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.parts: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def close(self) -> None:
        self.closing = True

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, ...: the transport's own
        return getattr(self.transport, name)

    def flush(self) -> None:
        if self.parts:
            self.transport.write(b"".join(self.parts))
        if self.closing:
            self.transport.close()
