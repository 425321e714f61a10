"""/metrics and the API docs off the public port of the web services (API, gateway).

With METRICS_PORT set, one uvicorn server listens on both ports (`serve`),
and `PortSplit` lets the operator paths (`OPERATOR_PATHS`: /metrics, /docs,
/redoc, /openapi.json) answer on the metrics port only, while that port serves
nothing else but the health probes: the ingress and Render expose the public
port alone, Prometheus scrapes the other. Which port a request came in on is
the listening socket's own address (ASGI `server`), which no header can
change. In production without METRICS_PORT the docs are off altogether
(`docs_options`); /metrics stays on the public port then, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.settings import Settings

OPERATOR_PATHS = frozenset({"/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
TICK_S = 1.0  # QuietServer's main loop: the Date header's resolution; a stop signal wakes it at once
PROBE_PREFIX = "/health/"  # liveness and readiness answer on both ports
NOT_FOUND = b'{"error":"not_found","detail":"Not Found"}'


def docs_options(settings: Settings) -> dict[str, str | None]:
    """FastAPI's keyword arguments for the docs: FastAPI's defaults, or none in production without METRICS_PORT."""
    if settings.is_production and not settings.METRICS_PORT:
        return {"docs_url": None, "redoc_url": None, "openapi_url": None}
    return {}


class PortSplit:
    """Pure ASGI middleware: operator paths on `metrics_port` only, and only those (and probes) there."""

    def __init__(self, app: ASGIApp, metrics_port: int) -> None:
        self.app = app
        self.metrics_port = metrics_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            on_metrics_port = came_on(scope, self.metrics_port)
            path = scope["path"]
            if on_metrics_port:
                allowed = path in OPERATOR_PATHS or path.startswith(PROBE_PREFIX)
            else:
                allowed = path not in OPERATOR_PATHS
            if not allowed:
                await _not_found(scope, send)
                return
        await self.app(scope, receive, send)


def came_on(scope: Scope, port: int | None) -> bool:
    """The request came in on `port` (the listening socket's own address, which no header can change)."""
    server = scope.get("server")
    return bool(port) and server is not None and server[1] == port


async def _not_found(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(NOT_FOUND)).encode())]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": NOT_FOUND})


def split_ports(app: FastAPI, settings: Settings) -> None:
    """With METRICS_PORT set, put `PortSplit` around everything `app` has: call it after the last add_middleware."""
    if settings.METRICS_PORT:
        app.add_middleware(PortSplit, metrics_port=settings.METRICS_PORT)


class QuietServer(uvicorn.Server):
    """uvicorn's server without its ten wake-ups a second: uvicorn's main loop looks at `should_exit` every
    100 ms (and renews the Date header every tenth time), which is most of what an idle API or gateway costs
    (~1 ms of CPU a second each here). This one ticks every TICK_S, and a stop signal wakes it at once."""

    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        while not await self.on_tick(0):  # counter 0: the Date header renewed on every tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.wake()

    def wake(self) -> None:
        """Have the main loop look at `should_exit` now; from any thread, or a signal handler (the loop's
        wake-up is a write to its file descriptor)."""
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # its loop already closed: it has stopped
                self._loop.call_soon_threadsafe(self._wake.set)


def serve(app: ASGIApp, host: str, port: int, metrics_port: int, **options: Any) -> None:
    """Run `app` with uvicorn on `port`, and on `metrics_port` too when set (one server, one event loop).

    `options` are uvicorn.Config's (proxy headers and the like), for both ports."""
    options = {"log_config": None, "access_log": False, **options}
    config = uvicorn.Config(app, host=host, port=port, **options)
    server = QuietServer(config)
    if not metrics_port:
        server.run()
        return
    metrics = uvicorn.Config(app, host=host, port=metrics_port, **options)
    server.run(sockets=[config.bind_socket(), metrics.bind_socket()])
