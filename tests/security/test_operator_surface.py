"""Health and metrics as an attack surface (issue 13, item 5).

`GET /health/readiness` is unauthenticated: a flood of it must not open a
Postgres connection per request (the pool's, cached for a second), and its
answer names no host, user or database. With METRICS_PORT set, /metrics and
the docs answer on that port only and it serves nothing else but probes; in
production without it the docs are off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from harness.http import client_tls, http
from harness.stack import Stack, wait_ready
from services.common.embedded import free_port
from services.common.health import CachedReadiness, PostgresProbe, Readiness, check_redis, serve_health
from services.common.settings import Settings
from services.orchestrator_api.app import create_app as create_api
from services.realtime_gateway.app import create_app as create_gateway
from tests.factories import make_tick

pytestmark = pytest.mark.anyio
PUBLIC, METRICS = 8000, 9464  # the ports the in-process clients say they called (ASGI `server`)
OPERATOR = ["/metrics", "/docs", "/redoc", "/openapi.json"]
FACTORIES: dict[str, Callable[[Settings], FastAPI]] = {"api": create_api, "gateway": create_gateway}


class Sessions:
    """Postgres sessions ever opened on the test's database (pg_stat_database), read on one connection of its own."""

    def __init__(self, settings: Settings) -> None:
        self.conn = psycopg.connect(settings.pg_dsn, autocommit=True)

    def __call__(self) -> int:
        time.sleep(0.2)  # a backend that has just exited has flushed its counters by now
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        row = self.conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def sessions(settings: Settings) -> Iterator[Sessions]:
    counter = Sessions(settings)
    yield counter
    counter.conn.close()


@asynccontextmanager
async def started(factory: Callable[[Settings], FastAPI], settings: Settings) -> AsyncIterator[FastAPI]:
    app = factory(settings)
    async with app.router.lifespan_context(app):
        yield app


def on_port(app: FastAPI, port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=f"http://svc:{port}")


@pytest.mark.slow  # a flood of requests, twice
async def test_a_readiness_flood_opens_no_postgres_connection_per_request(
    settings: Settings, sessions: Sessions
) -> None:
    async with started(create_api, settings) as app, on_port(app, PUBLIC) as http:
        before = sessions()
        flood = await asyncio.gather(*(http.get("/health/readiness") for _ in range(40)))
        opened_by_flood = sessions() - before
    settings.READINESS_CACHE_S = 0  # no cache: every request checks, on a connection of the API's pool
    async with started(create_api, settings) as app, on_port(app, PUBLIC) as http:
        await http.get("/health/readiness")  # the pool's first connection
        before = sessions()
        one_by_one = [await http.get("/health/readiness") for _ in range(30)]
        opened_one_by_one = sessions() - before

    assert {(a.status_code, a.text) for a in flood + one_by_one} == {(200, '{"status":"ready"}')}
    assert opened_by_flood <= 2, f"{opened_by_flood} Postgres sessions for 40 readiness requests"
    assert opened_one_by_one == 0, f"{opened_one_by_one} new Postgres sessions for 30 checks on a pool"


def test_the_sync_probe_keeps_one_connection(settings: Settings, sessions: Sessions) -> None:
    probe = PostgresProbe(settings.pg_dsn)
    before = sessions()
    assert [probe() for _ in range(30)] == [None] * 30
    assert sessions() - before <= 1
    probe.close()


def test_the_health_thread_checks_once_for_a_flood() -> None:
    checks: list[float] = []

    def readiness() -> Readiness:
        checks.append(time.monotonic())
        return Readiness()

    server = serve_health("127.0.0.1", 0, readiness, cache_s=600)  # longer than 50 requests on a loaded machine
    try:
        url = f"http://127.0.0.1:{server.server_port}/health/readiness"
        with httpx.Client(
            verify=client_tls()
        ) as http:  # one client: each of its TLS setups costs 30-300 ms, for nothing here
            assert {http.get(url).status_code for _ in range(50)} == {200}
    finally:
        server.shutdown()
        server.server_close()
    assert len(checks) == 1


async def test_concurrent_readiness_requests_share_one_check() -> None:
    checks = 0

    async def slow() -> Readiness:
        nonlocal checks
        checks += 1
        await asyncio.sleep(0.05)
        return Readiness()

    cached = CachedReadiness(slow, ttl=1.0)
    assert await asyncio.gather(*(cached() for _ in range(100))) == [Readiness()] * 100
    assert checks == 1


async def test_readiness_names_no_host_user_or_database_but_the_log_does(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = settings.model_copy(update={"PG_URL": "postgresql+psycopg://nosuchuser7@127.0.0.1:5432/nosuchdb7"})
    with caplog.at_level(logging.WARNING):
        async with started(create_api, wrong) as app, on_port(app, PUBLIC) as http:
            answer = await http.get("/health/readiness")
    assert (answer.status_code, answer.json()) == (200, {"status": "degraded", "degraded": ["postgres: unavailable"]})
    for detail in ("nosuchuser7", "nosuchdb7", "127.0.0.1", "5432"):
        assert detail not in answer.text
    logged = [r for r in caplog.records if r.getMessage() == "health.check_failed"]
    assert logged
    assert "nosuchuser7" in str(logged[0].__dict__.get("error"))


async def test_redis_down_is_a_generic_reason() -> None:
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    assert await check_redis(client) == "redis: unavailable"
    await client.aclose()


@pytest.mark.parametrize("service", list(FACTORIES))
async def test_metrics_and_docs_answer_on_the_metrics_port_only(settings: Settings, service: str) -> None:
    settings.METRICS_PORT = METRICS
    async with started(FACTORIES[service], settings) as app, on_port(app, PUBLIC) as public:
        async with on_port(app, METRICS) as metrics:
            hidden = {path: (await public.get(path)).status_code for path in OPERATOR}
            shown = {path: (await metrics.get(path)).status_code for path in OPERATOR}
            probes = [(await c.get("/health/readiness")).status_code for c in (public, metrics)]
            scrape = (await metrics.get("/metrics")).text
            schema = (await metrics.get("/openapi.json")).json()
    assert hidden == dict.fromkeys(OPERATOR, 404)
    assert shown == dict.fromkeys(OPERATOR, 200)
    assert probes == [200, 200]
    assert "python_info" in scrape
    assert "/health/readiness" in schema["paths"]


async def test_the_metrics_port_serves_neither_reads_nor_ingest(settings: Settings) -> None:
    settings.METRICS_PORT = METRICS
    auth = (settings.INGEST_USERNAME, settings.INGEST_PASSWORD)
    async with started(create_api, settings) as app, on_port(app, METRICS) as metrics:
        ingest = await metrics.post("/ingest/tick", json=make_tick(), auth=auth)
        read = await metrics.get("/symbols")
    async with started(create_gateway, settings) as app, on_port(app, METRICS) as metrics:
        dashboard = await metrics.get("/")
        config = await metrics.get("/config.json")
    assert [r.status_code for r in (ingest, read, dashboard, config)] == [404, 404, 404, 404]
    assert ingest.json() == {"error": "not_found", "detail": "Not Found"}


@pytest.mark.parametrize("service", list(FACTORIES))
async def test_production_without_a_metrics_port_serves_no_docs(settings: Settings, service: str) -> None:
    production = settings.model_copy(update={"MDSTACK_ENV": "production"})  # the test servers have no password
    async with started(FACTORIES[service], production) as app, on_port(app, PUBLIC) as public:
        docs = {path: (await public.get(path)).status_code for path in ["/docs", "/redoc", "/openapi.json"]}
        scrape = await public.get("/metrics")
    assert docs == {"/docs": 404, "/redoc": 404, "/openapi.json": 404}
    assert scrape.status_code == 200  # still here without METRICS_PORT: the chart and Render set one


@pytest.mark.e2e
def test_a_real_api_listens_on_both_ports(settings: Settings, tmp_path: Path) -> None:
    stack = Stack(settings, tmp_path)
    metrics_port = free_port()
    stack.start("api", METRICS_PORT=str(metrics_port))
    try:
        wait_ready(stack.api_url)
        public, metrics = stack.api_url, f"http://127.0.0.1:{metrics_port}"
        answers = {
            "public /metrics": http().get(f"{public}/metrics").status_code,
            "public /docs": http().get(f"{public}/docs").status_code,
            "public /symbols": http().get(f"{public}/symbols").status_code,
            "metrics /metrics": http().get(f"{metrics}/metrics").status_code,
            "metrics /docs": http().get(f"{metrics}/docs").status_code,
            "metrics /symbols": http().get(f"{metrics}/symbols").status_code,
        }
    finally:
        stack.stop_all()
    assert answers == {
        "public /metrics": 404,
        "public /docs": 404,
        "public /symbols": 200,
        "metrics /metrics": 200,
        "metrics /docs": 200,
        "metrics /symbols": 404,
    }
