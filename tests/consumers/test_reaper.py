"""Abandoned jobs: a started job nobody runs any more (its worker dead, or alive and running something else)
is handed back to the queue; a job its worker runs, or has only just started, is left alone."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from rq import Retry
from rq.job import Job, JobStatus

from harness.stack import Stack, wait_ready
from services.common.jobs import SERIALIZER, BatchJob, job_queue
from services.common.keys import Keys
from services.common.settings import Settings
from services.consumers.reaper import Reaper
from services.consumers.worker import Worker


def a_worker(settings: Settings, client: redis.Redis, name: str) -> Worker:
    return Worker(
        [job_queue(settings, client)], connection=client, name=name, serializer=SERIALIZER, job_class=BatchJob
    )


def started_by(settings: Settings, client: redis.Redis, worker: Worker | str, batch_id: str = "x") -> Job:
    """A job taken by `worker` exactly as RQ takes it, then left there (the worker 'died' or lost Redis)."""
    worker = a_worker(settings, client, worker) if isinstance(worker, str) else worker
    queue = job_queue(settings, client)
    job = queue.enqueue("services.consumers.tasks.process_batch", batch_id=batch_id, retry=Retry(max=2))
    queue.pop_job_id()
    worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    assert job.id in queue.started_job_registry.get_job_ids(cleanup=False)
    return job


def started_ago(client: redis.Redis, job: Job, seconds: float) -> None:
    """Backdate the job's execution, as if its worker had marked it started `seconds` ago."""
    [execution] = job.get_executions()
    client.hset(execution.key, "created_at", time.time() - seconds)


def started_jobs(settings: Settings, client: redis.Redis) -> list[str]:
    return job_queue(settings, client).started_job_registry.get_job_ids(cleanup=False)


def test_job_of_a_worker_without_heartbeat_goes_back_to_the_queue(settings: Settings) -> None:
    settings.JOB_RETRY_INTERVALS = "0"
    client = redis.Redis.from_url(settings.redis_url)
    job = started_by(settings, client, "dead-worker")
    queue = job_queue(settings, client)

    assert Reaper(settings, client, a_worker(settings, client, "live-worker")).sweep() == ([job.id], [])

    assert started_jobs(settings, client) == []
    assert queue.failed_job_registry.get_job_ids() == []
    assert queue.get_job_ids() == [job.id]  # queued again, to run at once
    job.refresh()
    assert job.get_status() == JobStatus.QUEUED
    assert job.retries_left == 1  # an abandoned run uses one retry
    client.close()


def test_job_a_live_worker_is_running_is_left_alone(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    busy = a_worker(settings, client, "busy-worker")
    job = started_by(settings, client, busy)
    started_ago(client, job, 10 * settings.WORKER_DEAD_AFTER_S)  # a long job
    Reaper(settings, client, busy).beat()

    assert client.get(Keys(settings.KEY_PREFIX).worker_alive("busy-worker")) == f"{job.id}:{busy.execution.id}".encode()
    assert Reaper(settings, client, a_worker(settings, client, "other-worker")).sweep() == ([], [])
    assert started_jobs(settings, client) == [job.id]
    client.close()


@pytest.mark.parametrize("now_running", ["nothing", "another job"])
def test_job_a_live_worker_no_longer_runs_goes_back_to_the_queue(settings: Settings, now_running: str) -> None:
    """A worker that lost Redis mid-job carries on under a new RQ worker object: its old job is left started."""
    client = redis.Redis.from_url(settings.redis_url)
    lost = started_by(settings, client, "same-worker")
    started_ago(client, lost, settings.WORKER_DEAD_AFTER_S + 1)
    again = a_worker(settings, client, "same-worker")  # alive again, under the same name
    other = started_by(settings, client, again, batch_id="y") if now_running == "another job" else None
    Reaper(settings, client, again).beat()

    assert Reaper(settings, client, a_worker(settings, client, "other-worker")).sweep() == ([lost.id], [])

    assert started_jobs(settings, client) == ([other.id] if other else [])
    assert job_queue(settings, client).get_job_ids() == [lost.id]
    client.close()


def test_job_just_started_is_left_alone_though_the_heartbeat_does_not_name_it_yet(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    worker = a_worker(settings, client, "busy-worker")
    Reaper(settings, client, worker).beat()  # the beat before it took the job: idle
    job = started_by(settings, client, worker)
    started_ago(client, job, settings.WORKER_DEAD_AFTER_S - 2)

    assert Reaper(settings, client, a_worker(settings, client, "other-worker")).sweep() == ([], [])
    assert started_jobs(settings, client) == [job.id]
    client.close()


def test_job_whose_execution_was_created_but_never_marked_started_goes_back_to_the_queue(settings: Settings) -> None:
    """Redis died right after RQ created the execution (started registry, execution hash) and before it marked
    the job started (status, worker_name, out of the intermediate list). The worker carries on under a new name."""
    client = redis.Redis.from_url(settings.redis_url)
    queue = job_queue(settings, client)
    job = queue.enqueue("services.consumers.tasks.process_batch", batch_id="p", retry=Retry(max=2))
    client.lmove(queue.key, queue.intermediate_queue.key)
    a_worker(settings, client, "old-name").prepare_execution(job)
    reaper = Reaper(settings, client, a_worker(settings, client, "new-name"))

    assert reaper.sweep() == ([job.id], [])  # RQ's cleanup drops the entry: the job never started
    assert started_jobs(settings, client) == []
    client.set(queue.intermediate_queue.get_first_seen_key(job.id), time.time() - 10)
    assert reaper.sweep() == ([job.id], [])  # and the stranded sweep requeues it

    assert queue.get_job_ids() == [job.id]
    assert queue.intermediate_queue.get_job_ids() == []
    job.refresh()
    assert job.retries_left == 2  # it never ran: no retry used
    client.close()


def test_a_job_that_finishes_while_the_reaper_looks_is_neither_touched_nor_reported(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    worker = a_worker(settings, client, "busy-worker")  # no heartbeat yet: as good as dead to a reaper
    job = started_by(settings, client, worker)
    queue = job_queue(settings, client)
    reaper = Reaper(settings, client, a_worker(settings, client, "live-worker"))
    entries = queue.started_job_registry.get_job_and_execution_ids(cleanup=False)
    with client.pipeline() as pipe:  # the job ends between the reaper's reads, as RQ ends it
        worker.cleanup_execution(job, pipe, worker.execution)
        pipe.execute()

    assert reaper.hand_back(reaper.abandoned(entries)) == []

    assert started_jobs(settings, client) == []
    assert queue.get_job_ids() == []  # not queued again
    client.close()


def test_a_restarted_worker_hands_back_at_once_what_its_old_rq_worker_left_started(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    old = a_worker(settings, client, "old-name")
    reaper = Reaper(settings, client, old)
    reaper.beat()
    job = started_by(settings, client, old)

    reaper.serve(a_worker(settings, client, "new-name"))

    keys = Keys(settings.KEY_PREFIX)
    assert client.get(keys.worker_alive("old-name")) is None
    assert client.get(keys.worker_alive("new-name")) == b""  # idle, and alive before it takes a job
    assert reaper.sweep() == ([job.id], [])
    client.close()


def test_only_one_worker_reaps_at_a_time(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    started_by(settings, client, "dead-worker")
    client.set(Keys(settings.KEY_PREFIX).reaper_lock, "someone-else", px=5000)

    assert Reaper(settings, client, a_worker(settings, client, "live-worker")).sweep() == ([], [])
    client.close()


def test_a_retry_the_scheduler_left_late_is_queued(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    queue = job_queue(settings, client)
    late = queue.enqueue_at(datetime.now(UTC) - timedelta(seconds=30), "services.consumers.tasks.process_batch", "a")
    on_time = queue.enqueue_at(datetime.now(UTC) - timedelta(seconds=1), "services.consumers.tasks.process_batch", "b")

    assert Reaper(settings, client, a_worker(settings, client, "live-worker")).sweep() == ([], [late.id])

    assert queue.get_job_ids() == [late.id]
    assert queue.scheduled_job_registry.get_job_ids() == [on_time.id]  # still the scheduler's to queue
    client.close()


def test_a_job_stranded_between_queue_and_started_goes_back_to_the_queue(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    queue = job_queue(settings, client)
    job = queue.enqueue("services.consumers.tasks.process_batch", batch_id="s")
    client.lmove(queue.key, queue.intermediate_queue.key)  # popped by a worker that lost Redis right then
    reaper = Reaper(settings, client, a_worker(settings, client, "live-worker"))

    assert reaper.sweep() == ([], [])  # first sighting: a live worker may be about to mark it started
    client.set(queue.intermediate_queue.get_first_seen_key(job.id), time.time() - 10)
    assert reaper.sweep() == ([job.id], [])

    assert queue.get_job_ids() == [job.id]
    assert queue.intermediate_queue.get_job_ids() == []
    client.close()


@pytest.mark.e2e
def test_worker_process_stops_promptly_on_sigterm(settings: Settings, tmp_path: Path) -> None:
    """The loop that starts RQ again after a lost connection must not swallow a stop request."""
    stack = Stack(settings, tmp_path)
    proc = stack.start("worker", health=True)
    try:
        wait_ready(stack.health["worker"])

        proc.send_signal(signal.SIGTERM)

        assert proc.wait(10) == 0
        assert "worker.restarted" not in (tmp_path / "worker.log").read_text()
    finally:
        stack.stop_all()
