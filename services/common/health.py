"""Liveness, readiness and /metrics for every service.

Readiness means "this process can do its job now": Redis answers, and
Postgres too for a process that cannot work without it (the flusher). A
process that only reads Postgres on the side (the API: ingest needs Redis
alone, history and candles need Postgres) stays ready with Postgres down and
says so: `{"status": "degraded", "degraded": ["postgres: ..."]}`, so a load
balancer keeps sending it ticks to buffer. The web services mount
`health_routes()`; processes without an HTTP API (worker, flusher) call
`serve_health()` to expose the same three paths from a daemon thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
import psycopg
import redis
from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.settings import Settings

CHECK_TIMEOUT_S = 2.0


def check_redis_sync(client: redis.Redis) -> str | None:
    try:
        client.ping()
    except Exception as exc:  # any failure means "not ready", with its reason
        return f"redis: {type(exc).__name__}: {exc}"
    return None


def check_postgres_sync(settings: Settings) -> str | None:
    try:
        with psycopg.connect(settings.pg_dsn, connect_timeout=int(CHECK_TIMEOUT_S)) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"postgres: {type(exc).__name__}: {exc}"
    return None


async def check_redis(client) -> str | None:  # type: ignore[no-untyped-def]
    try:
        await client.ping()
    except Exception as exc:
        return f"redis: {type(exc).__name__}: {exc}"
    return None


async def check_postgres(settings: Settings) -> str | None:
    try:
        conn = await psycopg.AsyncConnection.connect(settings.pg_dsn, connect_timeout=int(CHECK_TIMEOUT_S))
        async with conn:
            await conn.execute("SELECT 1")
    except Exception as exc:
        return f"postgres: {type(exc).__name__}: {exc}"
    return None


@dataclass(frozen=True)
class Readiness:
    problems: list[str] = field(default_factory=list)  # any: not ready (503)
    degraded: list[str] = field(default_factory=list)  # ready, but part of what it serves is down


Postgres = Literal["required", "optional", "unused"]


async def readiness_problems(client, settings: Settings, postgres: Postgres = "required") -> Readiness:  # type: ignore[no-untyped-def]
    """Why this process is not ready (Redis, and Postgres when `required`), and what is degraded."""
    redis_problem, pg_problem = await asyncio.gather(
        check_redis(client), check_postgres(settings) if postgres != "unused" else _none()
    )
    return _readiness(redis_problem, pg_problem, postgres)


def readiness_problems_sync(client: redis.Redis, settings: Settings, postgres: Postgres = "required") -> Readiness:
    pg_problem = check_postgres_sync(settings) if postgres != "unused" else None
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
    if readiness.problems:
        body = {"status": "unavailable", "problems": readiness.problems, "degraded": readiness.degraded}
        return 503, orjson.dumps(body)
    if readiness.degraded:
        return 200, orjson.dumps({"status": "degraded", "degraded": readiness.degraded})
    return 200, orjson.dumps({"status": "ready"})


def health_routes(readiness: Callable[[], object], metrics: Callable[[], object] | None = None) -> APIRouter:
    """`/health/*` and `/metrics` for a FastAPI app; `readiness` is an async callable returning problems."""
    router = APIRouter(tags=["health"])

    @router.get("/health/liveness")
    async def liveness() -> dict:
        return {"status": "alive"}

    @router.get("/health/readiness", responses={503: {"description": "Redis (or a required Postgres) unreachable"}})
    async def ready() -> Response:
        status, body = readiness_body(await readiness())  # type: ignore[misc]
        return Response(body, status_code=status, media_type="application/json")

    @router.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        if metrics is not None:
            await metrics()  # type: ignore[misc]
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def serve_health(host: str, port: int, readiness: Callable[[], Readiness | list[str]]) -> WSGIServer:
    """Serve /health/liveness, /health/readiness and /metrics from a daemon thread."""

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
