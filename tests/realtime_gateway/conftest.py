"""A real gateway on a real port (uvicorn in a thread, as httpx's own tests do).

httpx's ASGITransport buffers whole responses, so SSE is read from a server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI

from harness.servers import TestServer
from services.common.embedded import free_port
from services.common.settings import Settings
from services.realtime_gateway.app import create_app
from tests.realtime_gateway.helpers import Gateway, Publisher

START_TIMEOUT_S = 10.0


def _serve(app: FastAPI) -> tuple[TestServer, threading.Thread]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=free_port(),
        log_config=None,
        access_log=False,
        ws="none",
        lifespan="on",
        proxy_headers=False,  # as `mdstack gateway` runs it: the app trusts X-Forwarded-For (TRUSTED_PROXIES)
        timeout_graceful_shutdown=3,
    )
    server = TestServer(config)
    thread = threading.Thread(target=server.run, name="gateway-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.01)
    return server, thread


@pytest.fixture
def start_gateway() -> Iterator[Callable[[Settings], Gateway]]:
    """Start a gateway for the given settings (change them first); stopped after the test."""
    running: list[tuple[TestServer, threading.Thread]] = []

    def start(settings: Settings) -> Gateway:
        app = create_app(settings)
        server, thread = _serve(app)
        running.append((server, thread))
        return Gateway(url=f"http://127.0.0.1:{server.config.port}", app=app, server=server)

    yield start
    for server, thread in running:
        server.stop()
        thread.join(START_TIMEOUT_S)
        assert not thread.is_alive(), "the gateway did not stop"


@pytest.fixture
def gateway(start_gateway: Callable[[Settings], Gateway], settings: Settings) -> Gateway:
    return start_gateway(settings)


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def publisher(redis_client: aioredis.Redis, settings: Settings) -> Publisher:
    return Publisher(redis_client, settings)
