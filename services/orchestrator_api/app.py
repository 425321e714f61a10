"""The orchestrator API: ingest, internal view updates, read API, health and metrics.

Every error answers `{"error": ..., "detail": ...}`; the exceptions and their statuses are in `errors.py`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import redis
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.contract import document_stream
from services.common.db import async_engine
from services.common.health import Readiness, health_routes, readiness_problems
from services.common.logging import get_logger
from services.common.metrics_port import docs_options, split_ports
from services.common.outer_app import OuterApp
from services.common.redis import async_redis, sync_redis
from services.common.settings import Settings
from services.orchestrator_api import errors, metrics
from services.orchestrator_api.ingest import routes as ingest
from services.orchestrator_api.ingest.commit import GroupCommitter
from services.orchestrator_api.ingest.fastpath import IngestFastPath
from services.orchestrator_api.read import routes as read
from services.orchestrator_api.read import system
from services.orchestrator_api.rttm import metrics as rttm_metrics
from services.orchestrator_api.rttm import routes as rttm
from services.orchestrator_api.state import AppState
from services.orchestrator_api.upgrade import upgrade_jobs, upgrade_keys
from services.orchestrator_api.views import routes as views

log = get_logger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = sync_redis(settings)
        state = AppState(
            settings=settings,
            redis=async_redis(settings),
            sync_redis=client,
            engine=async_engine(settings),
            committer=GroupCommitter(settings, client),
        )
        app.state.mdstack = state
        try:
            await upgrade_keys(state.redis, state.keys)
            await anyio.to_thread.run_sync(upgrade_jobs, client, settings)  # before any worker meets a pickle
        except redis.RedisError as exc:  # Redis away at start: readiness says so; the next start upgrades
            log.warning("api.redis_keys_not_upgraded", error=str(exc))
        await state.committer.start()
        if settings.demo_secrets_in_use:
            log.warning("api.demo_credentials", names=settings.demo_secrets_in_use)
        log.info("api.started", queue=settings.QUEUE_NAME, channel=settings.PUBSUB_CHANNEL)
        try:
            yield
        finally:
            await state.committer.stop()
            await state.redis.aclose()
            client.close()
            await state.engine.dispose()
            log.info("api.stopped")

    app = OuterApp(
        title="mdstack orchestrator API",
        version="0.1.0",
        description="Ingest market ticks, serve views W, history and candles.",
        lifespan=lifespan,
        **docs_options(settings),
    )

    async def readiness() -> Readiness:
        state: AppState = app.state.mdstack
        return await readiness_problems(state.redis, state.engine, postgres="optional")  # on the pool

    async def refresh_metrics() -> None:
        try:
            await metrics.refresh_queue_gauges(app.state.mdstack.redis, settings)
            await rttm_metrics.SNAPSHOT.refresh(app.state.mdstack.redis, settings)
        except redis.RedisError as exc:
            log.warning("api.metrics_refresh_failed", error=str(exc))

    app.include_router(health_routes(readiness, refresh_metrics, settings.READINESS_CACHE_S))
    app.include_router(ingest.router)
    app.include_router(views.router)
    app.include_router(read.router)
    app.include_router(rttm.router)
    app.include_router(system.router)
    _install_error_handlers(app)
    app.add_middleware(RequestMetrics)
    # Dashboards served from elsewhere (the gateway, a static host) read the API from the browser.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET"],
        allow_headers=["x-api-key"],
        max_age=600,
    )
    if settings.INGEST_FASTPATH:
        # Outside FastAPI's whole stack (its error, telemetry and body-limit layers, and ours): outer_app.py.
        routes = {**ingest.endpoints(), **views.endpoints()}
        app.outer = (lambda stack: IngestFastPath(stack, routes, settings.METRICS_PORT),)
    split_ports(app, settings)  # outermost: /metrics and /docs on METRICS_PORT only
    document_stream(app)  # what ingest and /internal/agg-update publish, for the gateway to relay
    return app


def _install_error_handlers(app: FastAPI) -> None:
    async def answer(_request: Request, exc: Exception) -> JSONResponse:
        return errors.response(exc)

    for handled in errors.HANDLED:
        app.add_exception_handler(handled, answer)


class RequestMetrics:
    """Pure ASGI middleware: request count and latency per route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict) -> None:  # type: ignore[type-arg]
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)  # type: ignore[arg-type]
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics.REQUESTS.labels(scope["method"], path, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(path).observe(time.perf_counter() - started)
