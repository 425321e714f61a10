"""Abandoned jobs: the started job of a worker without a heartbeat is handed back to the queue."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from rq import Queue, Retry, SimpleWorker
from rq.job import Job, JobStatus

from bench.stack import Stack, wait_ready
from services.common.keys import Keys
from services.common.settings import Settings
from services.consumers.reaper import Reaper


def started_by(settings: Settings, client: redis.Redis, worker_name: str) -> Job:
    """A job taken by `worker_name` exactly as RQ takes it, then left there (the worker 'died')."""
    queue = Queue(settings.QUEUE_NAME, connection=client)
    job = queue.enqueue("services.consumers.tasks.process_batch", batch_id="x", retry=Retry(max=2))
    worker = SimpleWorker([queue], connection=client, name=worker_name)
    queue.pop_job_id()
    worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    assert job.id in queue.started_job_registry.get_job_ids(cleanup=False)
    return job


def test_job_of_a_worker_without_heartbeat_goes_back_to_the_queue(settings: Settings) -> None:
    settings.JOB_RETRY_INTERVALS = "0"
    client = redis.Redis.from_url(settings.redis_url)
    job = started_by(settings, client, "dead-worker")
    queue = Queue(settings.QUEUE_NAME, connection=client)

    assert Reaper(settings, client, "live-worker").sweep() == ([job.id], [])

    assert queue.started_job_registry.get_job_ids(cleanup=False) == []
    assert queue.failed_job_registry.get_job_ids() == []
    assert queue.get_job_ids() == [job.id]  # queued again, to run at once
    job.refresh()
    assert job.get_status() == JobStatus.QUEUED
    assert job.retries_left == 1  # an abandoned run uses one retry
    client.close()


def test_job_of_a_live_worker_is_left_alone(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    Reaper(settings, client, "busy-worker").beat()
    job = started_by(settings, client, "busy-worker")

    assert Reaper(settings, client, "other-worker").sweep() == ([], [])

    assert Queue(settings.QUEUE_NAME, connection=client).started_job_registry.get_job_ids(cleanup=False) == [job.id]
    client.close()


def test_only_one_worker_reaps_at_a_time(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    started_by(settings, client, "dead-worker")
    client.set(Keys(settings.KEY_PREFIX).reaper_lock, "someone-else", px=5000)

    assert Reaper(settings, client, "live-worker").sweep() == ([], [])
    client.close()


def test_a_retry_the_scheduler_left_late_is_queued(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    queue = Queue(settings.QUEUE_NAME, connection=client)
    late = queue.enqueue_at(datetime.now(UTC) - timedelta(seconds=30), "services.consumers.tasks.process_batch", "a")
    on_time = queue.enqueue_at(datetime.now(UTC) - timedelta(seconds=1), "services.consumers.tasks.process_batch", "b")

    assert Reaper(settings, client, "live-worker").sweep() == ([], [late.id])

    assert queue.get_job_ids() == [late.id]
    assert queue.scheduled_job_registry.get_job_ids() == [on_time.id]  # still the scheduler's to queue
    client.close()


def test_a_job_stranded_between_queue_and_started_goes_back_to_the_queue(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    queue = Queue(settings.QUEUE_NAME, connection=client)
    job = queue.enqueue("services.consumers.tasks.process_batch", batch_id="s")
    client.lmove(queue.key, queue.intermediate_queue.key)  # popped by a worker that lost Redis right then
    reaper = Reaper(settings, client, "live-worker")

    assert reaper.sweep() == ([], [])  # first sighting: a live worker may be about to mark it started
    client.set(queue.intermediate_queue.get_first_seen_key(job.id), time.time() - 10)
    assert reaper.sweep() == ([job.id], [])

    assert queue.get_job_ids() == [job.id]
    assert queue.intermediate_queue.get_job_ids() == []
    client.close()


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
