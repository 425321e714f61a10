"""Liveness, readiness and /metrics for every service.

Readiness means "this process can do its job now": Redis answers, and
Postgres too for a process that cannot work without it (the flusher). A
process that only reads Postgres on the side (the API: ingest needs Redis
alone, history and candles need Postgres) stays ready with Postgres down and
says so: `{"status": "degraded", "degraded": ["postgres: unavailable"]}`, so a
load balancer keeps sending it ticks to buffer. The web services mount
`health_routes()`; processes without an HTTP API (worker, flusher) call
`serve_health()` to expose the same three paths from a daemon thread.

Readiness is unauthenticated, so it must be cheap and say little: Postgres is
checked on a connection the process keeps (the API's pool, the flusher's
`PostgresProbe`), never a new one per request; an answer is reused for
READINESS_CACHE_S (concurrent requests share one check), so a flood costs one
check a second; and the reasons are generic ("postgres: unavailable"), the
exception (host, user, database) going to the log only.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
import psycopg
import redis
from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.contract import Liveness, ReadinessBody
from services.common.logging import get_logger

log = get_logger(__name__)
CHECK_TIMEOUT_S = 2.0
READINESS_CACHE_S = 1.0  # default of the setting: one real check a second however many probes arrive


def unavailable(component: str, exc: BaseException) -> str:
    """The reason readiness gives the outside; what went wrong goes to the log."""
    log.warning("health.check_failed", component=component, error=f"{type(exc).__name__}: {exc}")
    return f"{component}: unavailable"


def check_redis_sync(client: redis.Redis) -> str | None:
    try:
        client.ping()
    except Exception as exc:  # any failure means "not ready"
        return unavailable("redis", exc)
    return None


class PostgresProbe:
    """One Postgres connection kept for readiness checks, reopened after a failure (processes without a pool)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str | None:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.dsn, connect_timeout=int(CHECK_TIMEOUT_S), autocommit=True)
                self._conn.execute("SELECT 1")
            except Exception as exc:
                self.close()
                return unavailable("postgres", exc)
            return None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken: nothing to release
                pass
            self._conn = None


async def check_redis(client) -> str | None:  # type: ignore[no-untyped-def]
    try:
        await client.ping()
    except Exception as exc:
        return unavailable("redis", exc)
    return None


async def check_postgres(engine: AsyncEngine) -> str | None:
    """SELECT 1 on a connection of the process's own pool (no new connection while the pool holds one)."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return unavailable("postgres", exc)
    return None


@dataclass(frozen=True)
class Readiness:
    problems: list[str] = field(default_factory=list)  # any: not ready (503)
    degraded: list[str] = field(default_factory=list)  # ready, but part of what it serves is down


Postgres = Literal["required", "optional", "unused"]


async def readiness_problems(  # type: ignore[no-untyped-def]
    client, engine: AsyncEngine | None = None, postgres: Postgres = "required"
) -> Readiness:
    """Why this process is not ready (Redis, and Postgres when `required`), and what is degraded."""
    check_pg = postgres != "unused" and engine is not None
    redis_problem, pg_problem = await asyncio.gather(
        check_redis(client),
        check_postgres(engine) if check_pg else _none(),  # type: ignore[arg-type]
    )
    return _readiness(redis_problem, pg_problem, postgres)


def readiness_problems_sync(
    client: redis.Redis, probe: PostgresProbe | None = None, postgres: Postgres = "required"
) -> Readiness:
    pg_problem = probe() if postgres != "unused" and probe is not None else None
    return _readiness(check_redis_sync(client), pg_problem, postgres)


async def _none() -> None:
    return None


def _readiness(redis_problem: str | None, pg_problem: str | None, postgres: Postgres) -> Readiness:
    problems = [p for p in (redis_problem, pg_problem if postgres == "required" else None) if p]
    degraded = [pg_problem] if pg_problem and postgres == "optional" else []
    return Readiness(problems, degraded)


def readiness_body(readiness: Readiness | list[str]) -> tuple[int, bytes]:
    if isinstance(readiness, list):
        readiness = Readiness(readiness)
    body: ReadinessBody = {"status": "ready"}
    if readiness.problems:
        body = {"status": "unavailable", "problems": readiness.problems, "degraded": readiness.degraded}
    elif readiness.degraded:
        body = {"status": "degraded", "degraded": readiness.degraded}
    return (503 if readiness.problems else 200), orjson.dumps(body)


class CachedReadiness:
    """The last answer of `check` for `ttl` seconds; callers arriving while a check runs wait for that one."""

    def __init__(self, check: Callable[[], Awaitable[Readiness | list[str]]], ttl: float = READINESS_CACHE_S) -> None:
        self.check = check
        self.ttl = ttl
        self._answer: Readiness | list[str] | None = None
        self._at = 0.0
        self._running: asyncio.Future[Readiness | list[str]] | None = None

    async def __call__(self) -> Readiness | list[str]:
        if self._answer is not None and time.monotonic() - self._at < self.ttl:
            return self._answer
        if self._running is None:
            self._running = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._running)  # a caller that goes away does not cancel the others' check

    async def _refresh(self) -> Readiness | list[str]:
        try:
            self._answer = await self.check()
            self._at = time.monotonic()
            return self._answer
        finally:
            self._running = None


class CachedReadinessSync:
    """`CachedReadiness` for the health thread of processes without an HTTP API."""

    def __init__(self, check: Callable[[], Readiness | list[str]], ttl: float = READINESS_CACHE_S) -> None:
        self.check = check
        self.ttl = ttl
        self._answer: Readiness | list[str] | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> Readiness | list[str]:
        with self._lock:
            if self._answer is None or time.monotonic() - self._at >= self.ttl:
                self._answer = self.check()
                self._at = time.monotonic()
            return self._answer


def health_routes(
    readiness: Callable[[], Awaitable[Readiness | list[str]]],
    metrics: Callable[[], Awaitable[object]] | None = None,
    cache_s: float = READINESS_CACHE_S,
) -> APIRouter:
    """`/health/*` and `/metrics` for a FastAPI app; `readiness` is an async callable returning problems."""
    router = APIRouter(tags=["health"])
    cached = CachedReadiness(readiness, cache_s)

    @router.get("/health/liveness", response_model=Liveness)
    async def liveness() -> Liveness:
        return {"status": "alive"}

    @router.get(
        "/health/readiness",
        response_model=ReadinessBody,
        responses={503: {"model": ReadinessBody, "description": "Redis (or a required Postgres) unreachable"}},
    )
    async def ready() -> Response:
        status, body = readiness_body(await cached())
        return Response(body, status_code=status, media_type="application/json")

    @router.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        if metrics is not None:
            await metrics()
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def serve_health(
    host: str, port: int, readiness: Callable[[], Readiness | list[str]], cache_s: float = READINESS_CACHE_S
) -> WSGIServer:
    """Serve /health/liveness, /health/readiness and /metrics from a daemon thread."""
    readiness = CachedReadinessSync(readiness, cache_s)

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        path = environ.get("PATH_INFO", "")
        if path == "/health/liveness":
            status, body, ctype = 200, b'{"status":"alive"}', "application/json"
        elif path == "/health/readiness":
            status, body = readiness_body(readiness())
            ctype = "application/json"
        elif path == "/metrics":
            status, body, ctype = 200, generate_latest(), CONTENT_TYPE_LATEST
        else:
            status, body, ctype = 404, b'{"error":"not_found"}', "application/json"
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
        start_response(f"{status} {reason}", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    server = make_server(host, port, app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
