"""Real servers for every test.

`REDIS_URL` / `PG_URL` set (CI on this machine): those servers. Unset: the
embedded redis-server and PostgreSQL, started once per session. Each session
gets its own Postgres database (migrated with Alembic); each test gets its own
Redis key prefix, RQ queue and pub/sub channel, so runs can share servers.

A test that starts a process must be marked e2e, fault or browser (harness/lanes.py):
`make test-fast` leaves those out.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest
import redis
import structlog

from harness import lanes
from harness.stack import isolated_copy, isolated_settings, purge, scratch_database
from services.common.db import metadata
from services.common.embedded import EmbeddedPostgres, EmbeddedRedis
from services.common.settings import Settings
from services.orchestrator_api.app import create_app

# structlog through stdlib logging, so pytest captures service logs and shows them only for failures.
structlog.configure(
    processors=[structlog.stdlib.add_log_level, structlog.stdlib.render_to_log_kwargs],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False)
    with lanes.unguarded():  # shared by every test, started once
        url = server.start()
    yield url
    with lanes.unguarded():
        server.stop()


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("PG_URL"):
        yield os.environ["PG_URL"]
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
    with lanes.unguarded():
        url = server.start()
    yield url
    with lanes.unguarded():
        server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A database of its own for this session, with the schema migrated."""
    with scratch_database(pg_admin_url, "mdstack_test") as url:
        yield url


@pytest.fixture(scope="session")
def settings_template(redis_url: str, pg_url: str) -> Settings:
    """The tests' settings, built once: each test gets a copy with Redis names of its own."""
    return isolated_settings(
        redis_url,
        pg_url,
        "t",
        INGEST_USERNAME="test-user",
        INGEST_PASSWORD="test-password",
        INTERNAL_TOKEN="test-internal-token",
        JOB_RETRY_INTERVALS="0,0,0",
    )


@pytest.fixture
def settings(settings_template: Settings) -> Iterator[Settings]:
    s = isolated_copy(settings_template, "t")  # a Settings built from its sources costs 20-80 ms, per test
    # DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE of the partitioned tables (a new file for
    # each of ~100 relations) cost 150-250 ms per test, about two minutes of the suite.
    # One round trip for all of them (a query without parameters may hold several statements): 9 in a row
    # cost 15-40 ms per test, about 20 s of the fast lane.
    with psycopg.connect(s.pg_dsn) as conn:
        conn.execute("; ".join(f"DELETE FROM {table.name}" for table in reversed(metadata.sorted_tables)))
    yield s
    purge(s)


@pytest.fixture
def client(settings: Settings) -> Iterator[redis.Redis]:
    """A plain Redis client on the test's server."""
    c = redis.Redis.from_url(settings.redis_url)
    yield c
    c.close()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real API app with its lifespan, in process; authenticated for ingest."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", auth=(settings.INGEST_USERNAME, settings.INGEST_PASSWORD)
        ) as client:
            yield client
