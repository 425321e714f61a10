"""Test helpers: publishing as the API does, opening streams, reading metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI
from prometheus_client import REGISTRY

from harness.servers import client_tls
from harness.sse import SSEReader
from services.common.realtime import publish
from services.common.schemas import envelope
from services.common.settings import Settings
from services.realtime_gateway.app import create_app


@dataclass
class Gateway:
    url: str
    app: FastAPI
    server: uvicorn.Server

    @property
    def port(self) -> int:
        return self.server.config.port

    @asynccontextmanager
    async def http(self) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(base_url=self.url, timeout=10.0, verify=client_tls()) as client:
            yield client


@dataclass
class Publisher:
    """Publishes envelopes exactly as the API does (`services.common.realtime.publish`)."""

    client: aioredis.Redis
    settings: Settings

    async def many(self, envs: list[bytes]) -> list[str]:
        return await publish(self.client, self.settings, envs)

    async def one(self, type_: str = "tick.received", *, symbol: str | None = "BTCUSDT", **data: object) -> str:
        return (await self.many([make_env(type_, symbol=symbol, **data)]))[0]


def make_env(type_: str = "tick.received", *, symbol: str | None = "BTCUSDT", **data: object) -> bytes:
    return envelope(type_, data or {"price": 100.0}, symbol=symbol)


@asynccontextmanager
async def in_process(
    settings: Settings | FastAPI, base_url: str = "http://gateway"
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway (or this app of it) with its lifespan, over ASGI: for answers that are not streams
    (ASGITransport buffers)."""
    app = settings if isinstance(settings, FastAPI) else create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=base_url) as client:
            yield client


@asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient, query: str = "", headers: dict[str, str] | None = None
) -> AsyncIterator[SSEReader]:
    """GET /stream; yields once the gateway has registered the client (its first frame)."""
    async with http.stream("GET", "/stream" + query, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SSEReader(response)
        await reader.connected()
        yield reader


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)
