"""Back-pressure: past its bounds, ingest refuses with 429/503 and Retry-After, stores nothing, and recovers."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import redis

from services.common.keys import Keys
from services.common.settings import Settings
from services.orchestrator_api.flusher import Flusher
from tests.factories import make_tick

pytestmark = pytest.mark.anyio


def flush_stream_length(settings: Settings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return int(client.xlen(Keys(settings.KEY_PREFIX).flush_stream))
    finally:
        client.close()


def flush_everything(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    flusher = Flusher(settings, client, "bp-test")
    flusher.ensure_group()
    while flusher.flush_once():
        pass
    flusher.close()
    client.close()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"INGEST_MAX_BACKLOG": 10, "INGEST_RETRY_AFTER_S": 3})


async def test_backlog_over_its_bound_gets_503_with_retry_after_until_the_flusher_catches_up(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    first = await api.post("/ingest/ticks", json=[make_tick(event_id=f"b{i}") for i in range(11)])
    assert first.json()["accepted"] == 11  # the bound is checked before a request: this one took it past

    refused = await api.post("/ingest/tick", json=make_tick(event_id="late"))

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "3"
    assert "INGEST_MAX_BACKLOG=10" in refused.json()["detail"]
    assert flush_stream_length(settings) == 1  # nothing of the refused request was stored

    await asyncio.to_thread(flush_everything, settings)
    client = redis.Redis.from_url(settings.redis_url)
    assert client.get(Keys(settings.KEY_PREFIX).backlog) == b"0"
    client.close()
    deadline = time.monotonic() + 5
    while (retry := await api.post("/ingest/tick", json=make_tick(event_id="late"))).status_code == 503:
        assert time.monotonic() < deadline, retry.json()
        await asyncio.sleep(0.1)
    assert retry.json()["accepted"] == 1


async def test_more_pending_items_than_the_bound_get_429(api: httpx.AsyncClient, settings: Settings) -> None:
    settings.INGEST_MAX_PENDING = 100
    settings.INGEST_MAX_BACKLOG = 10_000
    settings.INGEST_LINGER_MS = 300  # the first request's items wait for its commit while the others arrive

    batches = [[make_tick(event_id=f"p{n}-{i}") for i in range(60)] for n in range(3)]
    responses = await asyncio.gather(*(api.post("/ingest/ticks", json=b) for b in batches))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 429, 429]
    refused = [r for r in responses if r.status_code == 429]
    assert all(r.headers["retry-after"] == "3" for r in refused)
    assert "INGEST_MAX_PENDING=100" in refused[0].json()["detail"]
    # Once the group is committed there is room again; with nothing pending even a request over the bound is taken.
    retried = [tick for batch, r in zip(batches, responses, strict=True) if r.status_code == 429 for tick in batch]
    after = await api.post("/ingest/ticks", json=retried)
    assert after.status_code == 200
    assert after.json()["accepted"] == 120
