"""Back-pressure: past its bounds, ingest refuses with 429/503 and Retry-After, stores nothing, and recovers."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import redis

from harness.http import client_tls
from harness.servers import serve
from services.common.embedded import free_port
from services.common.jobs import job_queue
from services.common.keys import Keys
from services.common.scripts import register
from services.common.settings import Settings
from services.consumers import context
from services.consumers.reaper import Reaper
from services.consumers.worker import make_worker
from services.flusher.writer import Flusher
from services.orchestrator_api.app import create_app
from tests.factories import make_tick, stored_batch

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


@pytest.mark.slow  # waits for a flusher to catch up
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
    settings.INGEST_LINGER_GAP_MS = 0  # even when it was alone as the committer woke

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


@pytest.mark.slow  # waits for a worker to catch up
def test_items_waiting_for_the_workers_over_their_bound_get_503_until_a_worker_runs_them(
    settings: Settings, client: redis.Redis
) -> None:
    """Queued work is bounded in items, not only in jobs: one job of 5,000 ticks costs what 5,000 of one do."""
    settings.INGEST_MAX_QUEUED_ITEMS = 10
    settings.INGEST_MAX_QUEUED_JOBS = 1_000
    settings.INGEST_MAX_BACKLOG = 10_000
    settings.API_PORT = free_port()
    keys = Keys(settings.KEY_PREFIX)
    with (
        serve(create_app(settings), settings.API_PORT) as url,
        httpx.Client(
            base_url=url, auth=(settings.INGEST_USERNAME, settings.INGEST_PASSWORD), verify=client_tls()
        ) as api,
    ):
        first = api.post("/ingest/ticks", json=[make_tick(event_id=f"q{i}") for i in range(11)])
        assert first.json()["accepted"] == 11  # one job of 11 items takes the count past its bound
        assert client.get(keys.queued) == b"11"

        refused = api.post("/ingest/tick", json=make_tick(event_id="late"))
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "3"
        assert "11 items wait for the workers (INGEST_MAX_QUEUED_ITEMS=10)" in refused.json()["detail"]
        assert api.get("/system").json()["queued_items"] == 11

        make_worker(context.configure(settings)).work(burst=True)
        assert client.get(keys.queued) == b"0"  # the batch's deletion took its items off
        deadline = time.monotonic() + 5
        while (retry := api.post("/ingest/tick", json=make_tick(event_id="late"))).status_code == 503:
            assert time.monotonic() < deadline, retry.json()
            time.sleep(0.1)
        assert retry.json()["accepted"] == 1


def test_a_batch_deleted_twice_takes_its_items_off_once(settings: Settings, client: redis.Redis) -> None:
    keys = Keys(settings.KEY_PREFIX)
    stored_batch(client, settings, "d" * 32, [make_tick(event_id=f"d{i}") for i in range(3)])
    client.hset(keys.batch("d" * 32), "n", 3)
    client.set(keys.queued, 5)
    done = register(client, "batch_done", "services.consumers")
    assert [done(keys=[keys.batch("d" * 32), keys.queued]) for _ in range(2)] == [3, 0]
    assert client.get(keys.queued) == b"2"


def test_a_count_left_over_with_no_job_anywhere_is_settled_by_the_reaper(
    settings: Settings, client: redis.Redis
) -> None:
    """A batch that expired unread leaves its items counted; with no job left to read a batch, they are not."""
    keys = Keys(settings.KEY_PREFIX)
    queue = job_queue(settings, client)
    reaper = Reaper(settings, client, make_worker(context.configure(settings), name="settler"))
    client.set(keys.queued, 7)
    job = queue.enqueue("services.consumers.tasks.process_batch", batch_id="e" * 32)

    assert reaper.settle_queued() == 0  # a job is queued: its batch may still be there
    assert client.get(keys.queued) == b"7"
    job.delete()
    assert reaper.settle_queued() == 7
    assert client.get(keys.queued) == b"0"
