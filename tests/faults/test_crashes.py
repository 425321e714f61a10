"""kill -9 of a worker, the flusher, the API and the gateway while the feeder runs: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import anyio
import httpx
import orjson
import psycopg
import pytest
import redis
from rq import Worker
from rq.job import JobStatus

from harness.http import client_tls
from harness.sse import SSEReader, fields
from harness.stack import Stack
from services.common.jobs import BatchJob, job_queue
from services.common.keys import FLUSH_GROUP, Keys
from tests.faults.harness import FaultRun

RERUN_WITHIN_S = 30.0


def rq_worker_name(stack: Stack, process: str) -> str:
    client = redis.Redis.from_url(stack.settings.redis_url)
    pid = stack.processes[process].pid
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        workers = Worker.all(connection=client, queue=job_queue(stack.settings, client))
        for worker in workers:
            if worker.pid == pid:
                client.close()
                return worker.name
        time.sleep(0.05)
    raise AssertionError(f"no RQ worker with the pid of {process}")


def freeze_mid_job(stack: Stack, process: str) -> str:
    """SIGSTOP the worker at a moment it holds a started job; returns that job's id."""
    name = rq_worker_name(stack, process)
    pid = stack.processes[process].pid
    client = redis.Redis.from_url(stack.settings.redis_url)
    registry = job_queue(stack.settings, client).started_job_registry
    try:
        for attempt in range(2000):
            os.kill(pid, signal.SIGSTOP)
            started = registry.get_job_ids(cleanup=False)
            held = [
                j for j in BatchJob.fetch_many(started, connection=client) if j is not None and j.worker_name == name
            ]
            if held:
                return held[0].id
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.001 * (attempt % 7))
        raise AssertionError("never caught the worker inside a job")
    finally:
        client.close()


def test_worker_killed_mid_job_has_its_batch_run_again(stack: Stack, run: FaultRun) -> None:
    run.start_feeder(tps=300, duration=8)
    run.wait_accepted()
    job_id = freeze_mid_job(stack, "worker-1")
    stack.kill("worker-1")
    killed_at = time.monotonic()

    client = redis.Redis.from_url(stack.settings.redis_url)
    job = BatchJob.fetch(job_id, connection=client)
    # A job that succeeds is deleted at once (JOB_RESULT_TTL_S=0): gone means finished.
    while (status := client.hget(job.key, "status")) not in (None, JobStatus.FINISHED.value.encode()):
        assert time.monotonic() - killed_at < RERUN_WITHIN_S, f"job {job_id} is {status!r}"
        time.sleep(0.1)
    rerun_s = time.monotonic() - killed_at
    client.close()
    stack.restart("worker-1")

    run.verify(job=job_id, rerun_after_s=round(rerun_s, 1))


def flusher_holding_a_batch(run: FaultRun, client: redis.Redis) -> list[bytes]:
    """Ids of the stream entries the flusher has read and not acknowledged, once it holds some."""
    stream = Keys(run.settings.KEY_PREFIX).flush_stream
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pending = client.xpending_range(stream, FLUSH_GROUP, "-", "+", 10_000)
        if pending:
            return [p["message_id"] for p in pending]
        time.sleep(0.05)
    raise AssertionError("the flusher never held a batch")


def event_ids_of(client: redis.Redis, run: FaultRun, entry_ids: list[bytes]) -> set[str]:
    stream = Keys(run.settings.KEY_PREFIX).flush_stream
    ids: set[str] = set()
    for entry_id in entry_ids:
        for _, entry in client.xrange(stream, entry_id, entry_id):
            ids.update(t["event_id"] for t in orjson.loads(entry[b"items"]).get("tick", []))
    return ids


def blocked_on_lock(run: FaultRun) -> bool:
    with psycopg.connect(run.settings.pg_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO md_ticks%'"  # ticks: inside a WITH (candles)
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("moment", ["before_commit", "after_commit"])
def test_flusher_killed_mid_batch(stack: Stack, run: FaultRun, moment: str) -> None:
    """The table lock holds the flusher inside its transaction (before COMMIT); with Redis writes paused
    as well, letting the lock go lets it commit but not acknowledge (after COMMIT)."""
    run.start_feeder(tps=300, duration=6)
    run.wait_accepted()
    client = redis.Redis.from_url(run.settings.redis_url)
    with psycopg.connect(run.settings.pg_dsn) as lock:
        lock.execute("LOCK TABLE md_ticks IN EXCLUSIVE MODE")
        held = flusher_holding_a_batch(run, client)
        deadline = time.monotonic() + 20
        while not blocked_on_lock(run):
            assert time.monotonic() < deadline, "the flusher never reached its INSERT"
            time.sleep(0.05)
        held = flusher_holding_a_batch(run, client)
        batch_ids = event_ids_of(client, run, held)
        if moment == "after_commit":
            client.execute_command("CLIENT", "PAUSE", "4000", "WRITE")  # the ack (a write) waits
            lock.rollback()  # lets the INSERT and the COMMIT through
            deadline = time.monotonic() + 3
            while not batch_ids <= set(run.persisted()):
                assert time.monotonic() < deadline, "the flusher did not commit"
                time.sleep(0.02)
            stack.kill("flusher")
            committed = len(batch_ids)
            client.execute_command("CLIENT", "UNPAUSE")
        else:
            stack.kill("flusher")
            committed = len(batch_ids & set(run.persisted()))
    still_pending = flusher_holding_a_batch(run, client)
    assert set(held) <= set(still_pending)  # unacknowledged: the restarted flusher reads them again
    client.close()
    assert committed == (len(batch_ids) if moment == "after_commit" else 0)
    stack.restart("flusher")

    run.verify(moment=moment, batch_ticks=len(batch_ids), committed_before_kill=committed)


def test_api_killed_with_requests_in_flight(stack: Stack, run: FaultRun) -> None:
    run.start_feeder(tps=400, duration=7)
    run.wait_accepted()
    stack.kill("api")
    time.sleep(1.5)  # the outage under test: the feeder's requests meet a closed port and are retried
    stack.restart("api")

    result = run.verify()
    assert result["feeder_retries"] > 0  # requests were cut off and retried with the same event_ids


@pytest.mark.anyio
async def test_gateway_restart_resumes_from_last_event_id(stack: Stack, run: FaultRun) -> None:
    """A client that reconnects with Last-Event-ID after a gateway crash gets every event it missed."""
    received: list[str] = []

    async def listen(last_event_id: str | None) -> None:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        async with (
            httpx.AsyncClient(timeout=None, verify=client_tls()) as client,
            client.stream("GET", f"{stack.gateway_url}/stream", headers=headers) as response,
        ):
            assert response.status_code == 200
            reader = SSEReader(response)
            while True:
                frame = fields(await reader.event())
                if "id" in frame:
                    received.append(frame["id"])

    run.start_feeder(tps=100, duration=8)
    await asyncio.to_thread(run.wait_accepted, 50)
    first = asyncio.create_task(listen(None))
    with anyio.fail_after(30):
        while len(received) < 50:  # the first connection has carried events
            await asyncio.sleep(0.05)
    stack.kill("gateway")  # the connection breaks under the client
    with contextlib.suppress(httpx.HTTPError):
        await asyncio.wait_for(first, timeout=5)
    gap_started = time.monotonic()
    await asyncio.sleep(1.5)  # events go on being published while no gateway runs
    stack.restart("gateway")
    await asyncio.to_thread(stack.wait_ready, 30)
    gap_s = time.monotonic() - gap_started
    seen_before = len(received)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(listen(received[-1]), timeout=3)

    history = [i.decode() for i, _ in redis_history(run)]
    start, end = history.index(received[0]), history.index(received[-1])
    assert len(received) > seen_before + 100  # the resumed stream replayed the gap and went on live
    assert received == history[start : end + 1], "an event was missed or repeated across the restart"
    run.verify(events_received=len(received), gateway_down_s=round(gap_s, 1))


def redis_history(run: FaultRun) -> list[tuple[bytes, dict]]:
    client = redis.Redis.from_url(run.settings.redis_url)
    try:
        return client.xrange(Keys(run.settings.KEY_PREFIX).history)  # type: ignore[no-any-return]
    finally:
        client.close()
