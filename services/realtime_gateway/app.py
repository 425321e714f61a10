"""The SSE gateway: `GET /stream`, health and metrics, the dashboard at `/` and its read proxy `/api/...`.

The lifespan opens one async Redis client and runs the hub (one pub/sub
subscription for the whole process) as a task; each `/stream` request gets
a client queue from it. Errors answer `{"error": ..., "detail": ...}`
(see `errors.py`). What browsers reach is behind the viewer login when reads
are private (`viewer.py`); who the client is comes from `limits.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import anyio
import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.common.contract import document_stream
from services.common.health import Readiness, health_routes, readiness_problems
from services.common.keys import Keys
from services.common.logging import get_logger
from services.common.metrics_port import docs_options, split_ports
from services.common.outer_app import OuterApp
from services.common.realtime import is_stream_id
from services.common.redis import async_redis
from services.common.schemas import SYMBOL_PATTERN, ErrorBody
from services.common.settings import Settings
from services.realtime_gateway import dashboard
from services.realtime_gateway.conflate import parse_interval
from services.realtime_gateway.defaults import SHUTDOWN_GRACE_S, STARTUP_WAIT_S
from services.realtime_gateway.demand import keep_ticks_wanted
from services.realtime_gateway.direct import RawSend, Writer, writer_for
from services.realtime_gateway.errors import GatewayError, InvalidParameter
from services.realtime_gateway.frames import Filters
from services.realtime_gateway.headers import SecurityHeaders
from services.realtime_gateway.hub import Hub
from services.realtime_gateway.limits import ReplayLimits, StreamLimits, client_key
from services.realtime_gateway.proxy import PROXY_RESPONSES, ReadProxy
from services.realtime_gateway.response import SendClock, StreamResponse, Watchdog
from services.realtime_gateway.stream import client_stream
from services.realtime_gateway.viewer import LOGIN_REFUSED, ViewerLogin, require_viewer

log = get_logger(__name__)
TYPE_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MAX_ID_PART = 2**64 - 1  # stream id parts are unsigned 64-bit
CONFLATE_DESCRIPTION = (
    "A duration from 10ms to 10s (`100ms`, `1s`, or plain milliseconds like `250`): each (type, symbol) then gets "
    "at most one event per interval, the newest. If nothing was sent in the last interval an event goes out at "
    "once; otherwise the newest of each (type, symbol) goes out, in id order, when the interval ends. Envelopes "
    "without a symbol are never conflated and go out at once. A Last-Event-ID replay is conflated too. "
    "Absent: every event."
)


@dataclass
class GatewayState:
    settings: Settings
    redis: aioredis.Redis
    hub: Hub
    watchdog: Watchdog
    limits: StreamLimits
    replays: ReplayLimits
    proxy: ReadProxy


async def get_state(request: Request) -> GatewayState:  # async: a plain def costs a thread hop per request
    return request.app.state.gateway  # type: ignore[no-any-return]


StateDep = Annotated[GatewayState, Depends(get_state)]
VIEWER = [Depends(require_viewer)]  # on every route a browser reads (viewer.py)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = async_redis(settings, client_name=f"gateway:{settings.PUBSUB_CHANNEL}".replace(" ", "_"))
        hub = Hub(client, settings)
        watchdog = Watchdog(settings.SSE_SEND_TIMEOUT_S)
        limits = StreamLimits(settings.SSE_MAX_PER_IP, settings.SSE_MAX_CLIENTS)
        replays = ReplayLimits(settings.SSE_REPLAYS_PER_MIN)
        proxy = ReadProxy(settings)
        app.state.gateway = GatewayState(
            settings=settings, redis=client, hub=hub, watchdog=watchdog, limits=limits, replays=replays, proxy=proxy
        )
        task = asyncio.create_task(hub.run(), name="gateway-hub")
        watching = asyncio.create_task(watchdog.run(), name="gateway-send-watchdog")
        demand = asyncio.create_task(keep_ticks_wanted(hub, client, Keys(settings.KEY_PREFIX)), name="ticks-wanted")
        try:
            await asyncio.wait_for(hub.subscribed.wait(), STARTUP_WAIT_S)
            log.info("gateway.started", channel=settings.PUBSUB_CHANNEL)
        except TimeoutError:
            log.warning("gateway.started_unsubscribed", channel=settings.PUBSUB_CHANNEL, waited_s=STARTUP_WAIT_S)
        try:
            yield
        finally:
            for running in (task, watching, demand):
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            await proxy.aclose()
            await client.aclose()
            log.info("gateway.stopped")

    app = OuterApp(
        title="mdstack realtime gateway",
        version="0.1.0",
        description="Server-Sent Events fan-out of realtime updates, with Last-Event-ID resume.",
        lifespan=lifespan,
        **docs_options(settings),
    )
    login = ViewerLogin(settings)
    app.state.viewer = login
    if settings.cors_origins:  # a dashboard on another origin (a static host) reading /stream; none by default
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET"],
            allow_headers=["Last-Event-ID", "Cache-Control"],
        )
    app.add_middleware(SecurityHeaders)
    # Outermost: who the client is (limits.py), from X-Forwarded-For of TRUSTED_PROXIES only.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)

    @app.exception_handler(GatewayError)
    async def gateway_error(_request: Request, exc: GatewayError) -> JSONResponse:
        return exc.response()

    async def readiness() -> Readiness:
        return await readiness_problems(app.state.gateway.redis, postgres="unused")

    app.include_router(health_routes(readiness, cache_s=settings.READINESS_CACHE_S))

    @app.get(
        "/stream",
        response_class=EventSourceResponse,
        dependencies=VIEWER,
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "Envelopes as SSE events: `event:` names the type, `data:` is its JSON; the "
                "document's `x-sse-events` maps each event to its schema",
            },
            400: {"model": ErrorBody, "description": "A bad filter or Last-Event-ID"},
            **LOGIN_REFUSED,
            429: {
                "model": ErrorBody,
                "description": "Over SSE_MAX_PER_IP, SSE_MAX_CLIENTS or SSE_REPLAYS_PER_MIN; see Retry-After",
            },
        },
    )
    async def stream(
        request: Request,
        state: StateDep,
        symbols: Annotated[str | None, Query(description="Comma list; envelopes without a symbol pass")] = None,
        types: Annotated[str | None, Query(description="Comma list of envelope types")] = None,
        last_event_id: Annotated[str | None, Query(description="For clients that cannot set headers")] = None,
        last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
        conflate: Annotated[str | None, Query(description=CONFLATE_DESCRIPTION, examples=["100ms"])] = None,
    ) -> EventSourceResponse:
        """Realtime envelopes; reconnect with `Last-Event-ID` to get what was missed.

        With `conflate`, each (type, symbol) gets at most one event per interval, the newest.
        """
        filters = Filters(
            symbols=_comma_list("symbols", symbols, re.compile(SYMBOL_PATTERN)),
            types=_comma_list("types", types, TYPE_PATTERN),
        )
        resume = _resume_id(last_event_id_header, last_event_id)
        interval = _interval(conflate)
        ip = request.client.host if request.client else "-"
        peer = f"{ip}:{request.client.port}" if request.client else "-"
        who = client_key(ip)
        if resume is not None:
            state.replays.take(who)
        state.limits.acquire(who)
        shutdown = anyio.Event()
        clock = SendClock(peer)
        state.watchdog.watch(clock)

        def finished() -> None:
            state.watchdog.forget(clock)
            state.limits.release(who)

        def writer() -> Writer | None:
            return writer_for(request.scope, settings.SSE_CLIENT_BUFFER_BYTES)

        return StreamResponse(
            client_stream(state.hub, filters, resume, peer, shutdown, conflate=interval, writer=writer),
            clock=clock,
            background=BackgroundTask(finished),
            ping=settings.SSE_PING_S,
            sep="\n",
            shutdown_event=shutdown,
            shutdown_grace_period=SHUTDOWN_GRACE_S,
        )

    @app.get(
        "/api/{path:path}", tags=["dashboard"], dependencies=VIEWER, responses={**PROXY_RESPONSES, **LOGIN_REFUSED}
    )
    async def api_read(
        path: Annotated[str, Path(description="A read path of the API", examples=["symbols", "rttm/metrics"])],
        request: Request,
        state: StateDep,
    ) -> Response:
        """The API's read endpoints (`/api/symbols`, `/api/rttm/metrics`, ...), same origin, with the read key
        added by the gateway: the dashboard's only way to the API."""
        return await state.proxy.forward(path, request.query_params)

    dashboard.mount(app, settings, login)
    split_ports(app, settings)  # outermost middleware: /metrics and /docs on METRICS_PORT only
    app.outer = (RawSend,)  # outside even Starlette's error layer: the server's own send, for the hub (direct.py)
    document_stream(app)
    return app


def _comma_list(field: str, value: str | None, pattern: re.Pattern[str]) -> frozenset[str] | None:
    if value is None or not value.strip():
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    bad = [item for item in items if not pattern.match(item)]
    if bad:
        raise InvalidParameter(field, f"{', '.join(bad)} do not match {pattern.pattern}")
    return frozenset(items)


def _interval(value: str | None) -> float | None:
    """Seconds of `?conflate=`; None (no conflation) when absent or blank, as for the filters."""
    if value is None or not value.strip():
        return None
    try:
        return parse_interval(value)
    except ValueError as exc:
        raise InvalidParameter("conflate", str(exc)) from None


def _resume_id(header: str | None, query: str | None) -> str | None:
    """The `Last-Event-ID` header (what a reconnecting EventSource sends) wins over `?last_event_id=`."""
    field, value = ("Last-Event-ID", header) if header else ("last_event_id", query)
    if not value:
        return None
    value = value.strip()
    # ASCII first: `\d` also matches other scripts' digits, which Redis refuses as a stream id.
    if not value.isascii() or not is_stream_id(value) or any(int(part) > MAX_ID_PART for part in value.split("-")):
        raise InvalidParameter(field, f"{value[:64]!r} is not an event id like 1795565084139-0")
    return value
