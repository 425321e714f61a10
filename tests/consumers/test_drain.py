"""The drainer (consumers/drain.py): a job that found batches stays on, a round per JOB_CADENCE_MS, while the
API enqueues no job; it leaves only when nothing is pending, or hands over to a successor.

The API runs in process on a real port (rounds post views to it); RQ workers in burst mode in this thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis
from prometheus_client import REGISTRY

from harness.servers import serve
from services.common.embedded import free_port
from services.common.jobs import job_queue
from services.common.keys import Keys
from services.common.scripts import register
from services.common.settings import Settings
from services.consumers import context, drain, tasks
from services.consumers.defaults import DRAIN_IDLE_ROUNDS
from services.orchestrator_api.app import create_app
from tests.consumers.test_cadence import post_one, wait_for
from tests.consumers.test_calc import T0, tick
from tests.consumers.test_worker import view, work
from tests.factories import stored_batch


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    settings.JOB_CADENCE_MS = 50.0
    settings.INGEST_LINGER_GAP_MS = 0.0  # every commit lingers alike: the test is about jobs
    settings.API_PORT = free_port()
    with serve(create_app(settings), settings.API_PORT) as url:
        yield url
        context.configure(settings).close()


def jobs(outcome: str) -> float:
    return REGISTRY.get_sample_value("mdstack_worker_jobs_total", {"outcome": outcome}) or 0.0


def post_while_draining(url: str, settings: Settings, client: redis.Redis, ticks: list[dict], every_s: float) -> None:
    """Post `ticks` one by one from a thread, from the moment a job drains."""
    keys = Keys(settings.KEY_PREFIX)

    def run() -> None:
        wait_for(lambda: client.exists(keys.drainer))
        for t in ticks:
            post_one(url, settings, t)
            time.sleep(every_s)

    threading.Thread(target=run, daemon=True).start()


def test_one_job_drains_every_batch_committed_while_it_runs_and_the_api_enqueues_none(
    api_url: str, settings: Settings, client: redis.Redis
) -> None:
    settings.JOB_DRAIN_S = 10.0  # longer than the posts: one job takes them all
    keys = Keys(settings.KEY_PREFIX)
    ticks = [tick(i, T0 + i, 100 + i, 1, ("AAA", "BBB")[i % 2]) for i in range(24)]
    post_one(api_url, settings, ticks[0])  # carries the job
    post_while_draining(api_url, settings, client, ticks[1:], every_s=0.02)
    ok, empty = jobs("ok"), jobs("empty")

    work(settings)  # ends when the drainer has left and no job is queued

    assert jobs("ok") - ok == 1  # every later commit saw the drainer and enqueued nothing
    assert jobs("empty") - empty == 0
    for symbol, mine in (("AAA", ticks[0::2]), ("BBB", ticks[1::2])):
        w = view(api_url, symbol)
        assert w["trades_1m"] == len(mine)  # every tick of every batch, once
        assert w["price"] == mine[-1]["price"]
    assert not client.exists(keys.drainer)
    assert client.zcard(keys.pending) == 0
    assert int(client.get(keys.queued) or 0) == 0
    assert list(client.scan_iter(match=keys.claims("*"))) == []


def test_past_JOB_DRAIN_S_a_drainer_hands_over_to_a_successor(
    api_url: str, settings: Settings, client: redis.Redis
) -> None:
    settings.JOB_DRAIN_S = 0.3
    ticks = [tick(i, T0 + i, 100 + i, 1, "AAA") for i in range(40)]
    post_one(api_url, settings, ticks[0])
    post_while_draining(api_url, settings, client, ticks[1:], every_s=0.03)  # 1.2 s of posts
    ok = jobs("ok")

    work(settings)

    assert jobs("ok") - ok >= 2  # a successor (or a commit's job once the key was dropped) took over
    assert view(api_url, "AAA")["trades_1m"] == len(ticks)
    keys = Keys(settings.KEY_PREFIX)
    assert not client.exists(keys.drainer)
    assert client.zcard(keys.pending) == 0


def test_a_commit_while_a_job_drains_enqueues_no_job(api_url: str, settings: Settings, client: redis.Redis) -> None:
    keys = Keys(settings.KEY_PREFIX)
    queue = job_queue(settings, client)
    client.set(keys.drainer, "f" * 32, px=5000)
    post_one(api_url, settings, tick(1, T0, 100, 1, "AAA"))
    time.sleep(settings.JOB_CADENCE_MS / 1000 * 3)  # nor is one owed
    assert queue.count == 0
    assert client.zcard(keys.pending) == 1  # the drainer's to take

    client.delete(keys.drainer)  # it left
    post_one(api_url, settings, tick(2, T0 + 1, 101, 1, "AAA"))
    wait_for(lambda: queue.count == 1)


def test_a_job_finding_another_drainer_runs_one_round(api_url: str, settings: Settings, client: redis.Redis) -> None:
    keys = Keys(settings.KEY_PREFIX)
    client.set(keys.drainer, "f" * 32, px=5000)
    batch = stored_batch(client, settings, "a" * 32, [tick(1, T0, 100, 1, "AAA")])
    client.zadd(keys.pending, {batch: time.time() * 1000})
    context.configure(settings)

    started = time.monotonic()
    assert tasks.process_batch("b" * 32) == {"rounds": 1, "batches": 1, "ticks": 1, "views": 1}
    assert time.monotonic() - started < settings.JOB_CADENCE_MS / 1000  # no pause for a second round
    assert client.get(keys.drainer) == b"f" * 32  # the other job's still


def drainer(settings: Settings, client: redis.Redis) -> tuple[context.WorkerContext, Keys]:
    return context.configure(settings), Keys(settings.KEY_PREFIX)


def test_a_drainer_leaves_after_empty_rounds_only_when_nothing_is_pending(
    settings: Settings, client: redis.Redis
) -> None:
    settings.JOB_DRAIN_S = 0.5
    ctx, keys = drainer(settings, client)
    rounds = []

    def nothing_found() -> drain.Done:
        rounds.append(client.get(keys.drainer))  # held during every round
        return drain.Done(rounds=1)

    started = time.monotonic()
    done = drain.drain(ctx, "a" * 32, drain.Done(rounds=1, batches=1), nothing_found)
    assert done.rounds == DRAIN_IDLE_ROUNDS
    assert rounds == [b"a" * 32] * DRAIN_IDLE_ROUNDS
    assert time.monotonic() - started < settings.JOB_DRAIN_S
    assert not client.exists(keys.drainer)
    assert job_queue(settings, client).count == 0  # nothing pending: no successor

    # A batch pending that the rounds do not take (committed while the key was set): the drainer stays,
    # and past JOB_DRAIN_S hands it to a successor.
    client.zadd(keys.pending, {"c" * 32: time.time() * 1000})
    done = drain.drain(ctx, "b" * 32, drain.Done(rounds=1, batches=1), nothing_found)
    assert done.rounds > DRAIN_IDLE_ROUNDS
    assert not client.exists(keys.drainer)
    assert job_queue(settings, client).count == 1


def test_a_drainer_that_fails_drops_its_key_and_a_later_drainer_stops_an_overtaken_one(
    settings: Settings, client: redis.Redis
) -> None:
    ctx, keys = drainer(settings, client)

    def fails() -> drain.Done:
        raise RuntimeError("the API is away")

    with pytest.raises(RuntimeError):
        drain.drain(ctx, "a" * 32, drain.Done(rounds=1, batches=1), fails)
    assert not client.exists(keys.drainer)  # commits enqueue jobs again at once; RQ retries this one

    def overtaken() -> drain.Done:  # its key expired mid-round and another job took it
        client.set(keys.drainer, "c" * 32, px=5000)
        return drain.Done(rounds=1, batches=1)

    done = drain.drain(ctx, "b" * 32, drain.Done(rounds=1, batches=1), overtaken)
    assert done.rounds == 1
    assert client.get(keys.drainer) == b"c" * 32


def test_the_drain_script_never_drops_a_key_it_does_not_hold(settings: Settings, client: redis.Redis) -> None:
    keys = Keys(settings.KEY_PREFIX)
    script = register(client, "drain", "services.consumers")

    def call(job: str, mode: str) -> list[int]:
        return [int(x) for x in script(keys=[keys.drainer, keys.pending], args=[job, 2000, mode])]

    assert call("a", "stay") == [1, 0]
    assert 0 < client.pttl(keys.drainer) <= 2000
    assert call("b", "stay") == [-1, 0]
    assert call("b", "hand") == [-1, 0]
    assert client.get(keys.drainer) == b"a"
    client.zadd(keys.pending, {"x": 1})
    assert call("a", "leave") == [1, 1]  # a batch pending: stays
    client.zrem(keys.pending, "x")
    assert call("a", "leave") == [0, 0]
    assert not client.exists(keys.drainer)


def test_JOB_DRAIN_S_must_leave_room_under_JOB_TIMEOUT_S() -> None:
    with pytest.raises(ValueError, match="JOB_DRAIN_S"):
        Settings(JOB_DRAIN_S=30, JOB_TIMEOUT_S=60)
    assert Settings(JOB_DRAIN_S=0, JOB_TIMEOUT_S=1).JOB_DRAIN_S == 0


def test_a_full_round_queues_one_more_job_not_one_per_round(
    api_url: str, settings: Settings, client: redis.Redis
) -> None:
    """More waits than a round takes: a job for the other worker, but never more than one queued at a time."""
    settings.JOB_MAX_ITEMS = 2
    settings.JOB_DRAIN_S = 0.0  # single rounds, called directly
    keys = Keys(settings.KEY_PREFIX)
    queue = job_queue(settings, client)
    ids = [stored_batch(client, settings, f"{i:032x}", [tick(i, T0 + i, 100, 1, "AAA")]) for i in range(8)]
    client.zadd(keys.pending, {b: i for i, b in enumerate(ids)})
    context.configure(settings)

    assert tasks.process_batch("e" * 32)["batches"] == 2
    assert queue.count == 1  # for the other worker
    assert tasks.process_batch("d" * 32)["batches"] == 2
    assert queue.count == 1  # one is queued already: none more
    assert client.zcard(keys.pending) == 4
