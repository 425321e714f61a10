"""Jobs follow JOB_CADENCE_MS, not the request rate; each job drains every batch waiting (tasks.py, commit.py).

The API runs in process on a real port (the worker posts views to it), the worker in burst mode.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from harness.http import http
from harness.servers import serve
from services.common.embedded import free_port
from services.common.jobs import job_queue
from services.common.keys import Keys
from services.common.settings import Settings
from services.consumers import context, tasks
from services.consumers.defaults import STRANDED_S
from services.consumers.reaper import Reaper
from services.orchestrator_api.app import create_app
from tests.consumers.test_calc import T0, tick
from tests.consumers.test_reaper import a_worker
from tests.consumers.test_worker import view, work
from tests.factories import stored_batch


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    settings.JOB_CADENCE_MS = 400.0  # long enough that a burst of requests shares one cadence
    settings.API_PORT = free_port()
    with serve(create_app(settings), settings.API_PORT) as url:
        yield url
        context.configure(settings).close()  # the worker's connections to this API, before it stops


def post_one(url: str, settings: Settings, t: dict) -> None:
    body = {k: t[k] for k in ("event_id", "symbol", "price", "volume", "source", "ts")}
    auth = (settings.INGEST_USERNAME, settings.INGEST_PASSWORD)
    http().post(f"{url}/ingest/tick", json=body, auth=auth, timeout=10).raise_for_status()


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_burst_of_single_tick_posts_makes_one_or_two_jobs_and_one_view_per_symbol(
    api_url: str, settings: Settings, client: redis.Redis
) -> None:
    ticks = [tick(i, T0 + i, 100 + i, 1, ("AAA", "BBB")[i % 2]) for i in range(40)]
    started = time.monotonic()
    for t in ticks:
        post_one(api_url, settings, t)
    elapsed = time.monotonic() - started
    queue = job_queue(settings, client)
    # One job with the first commit, then at most one per cadence (the owed one comes after the burst).
    wait_for(lambda: client.zcard(Keys(settings.KEY_PREFIX).pending) == 0 or queue.count >= 2)
    assert 1 <= queue.count <= 2 + int(elapsed / (settings.JOB_CADENCE_MS / 1000))
    assert queue.count < len(ticks)

    work(settings)

    keys = Keys(settings.KEY_PREFIX)
    assert client.zcard(keys.pending) == 0
    assert int(client.get(keys.queued) or 0) == 0  # every batch's items taken off the queued count
    assert list(client.scan_iter(match=keys.batch("*"))) == []
    assert list(client.scan_iter(match=keys.claims("*"))) == []
    for symbol, mine in (("AAA", ticks[0::2]), ("BBB", ticks[1::2])):
        w = view(api_url, symbol)
        assert w["trades_1m"] == len(mine)  # every tick of every batch, once
        assert w["price"] == mine[-1]["price"]


def test_a_commit_without_a_job_gets_one_after_the_cadence(
    api_url: str, settings: Settings, client: redis.Redis
) -> None:
    queue = job_queue(settings, client)
    post_one(api_url, settings, tick(1, T0, 100, 1, "AAA"))  # carries a job
    post_one(api_url, settings, tick(2, T0 + 1, 101, 1, "AAA"))  # within the cadence: owes one
    assert queue.count == 1
    wait_for(lambda: queue.count == 2, timeout=5)  # the owed job, once the cadence allows

    work(settings)

    assert view(api_url, "AAA")["trades_1m"] == 2
    assert client.zcard(Keys(settings.KEY_PREFIX).pending) == 0


def test_two_jobs_never_take_the_same_batch_and_a_retry_takes_its_own_again(
    settings: Settings, client: redis.Redis
) -> None:
    keys = Keys(settings.KEY_PREFIX)
    ids = [stored_batch(client, settings, f"{i:032x}", [tick(i, T0 + i, 100, 1, "AAA")]) for i in range(6)]
    client.zadd(keys.pending, {b: i for i, b in enumerate(ids)})
    settings.JOB_MAX_ITEMS = 3

    first = tasks.claim(client, settings, "a" * 32, "a" * 32)
    second = tasks.claim(client, settings, "b" * 32, "b" * 32)

    assert len(first) == len(second) == 3
    assert set(first).isdisjoint(second)
    assert set(first) | set(second) == set(ids)
    assert client.zcard(keys.pending) == 0
    assert sorted(tasks.claim(client, settings, "a" * 32, "a" * 32)) == sorted(first)  # a retry: the same batches
    # A job's own batch that was never pending (enqueued by an older mdstack) is still its own to take.
    legacy = stored_batch(client, settings, "c" * 32, [tick(9, T0 + 9, 100, 1, "AAA")])
    assert tasks.claim(client, settings, legacy, legacy) == [legacy]


def test_batches_left_pending_without_a_job_get_one_from_the_reaper(settings: Settings, client: redis.Redis) -> None:
    """An API that owed a job and died before enqueuing it leaves batches pending: the reaper queues a job."""
    keys = Keys(settings.KEY_PREFIX)
    queue = job_queue(settings, client)
    reaper = Reaper(settings, client, a_worker(settings, client, "reaper-worker"))
    batch = stored_batch(client, settings, "d" * 32, [tick(1, T0, 100, 1, "AAA")])
    client.zadd(keys.pending, {batch: time.time() * 1000})

    assert reaper.unclaimed() is None  # just committed: its job may be on its way
    client.zadd(keys.pending, {batch: (time.time() - STRANDED_S - 1) * 1000})
    job_id = reaper.unclaimed()
    assert job_id is not None
    assert queue.get_job_ids() == [job_id]
    assert reaper.unclaimed() is None  # a job is queued: it will take the batch

    assert tasks.claim(client, settings, job_id, job_id) == [batch]
