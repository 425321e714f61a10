"""Abandoned jobs: a worker killed mid-job gets its batch run again within seconds.

RQ finds a job whose worker died only when the job's started-registry entry
expires (job timeout + 60 s for a SimpleWorker) and its maintenance pass runs
(every 10 minutes). Instead, every worker process keeps a short-lived
heartbeat key; a background thread renews it while jobs run (the GIL lets it),
and the same thread in every live worker looks, under a shared lock, for
started jobs whose worker has no heartbeat. Those are handed to RQ's own
`StartedJobRegistry.cleanup`, which retries them (an abandoned run uses one
of the job's retries) or, with no retries left, fails them. Jobs are safe to
run twice (see tasks.py), so a worker that was only slow costs a re-run, not
a wrong result.

A job popped from the queue by a worker that lost Redis (or died) before
marking it started stays in RQ's intermediate list; RQ requeues it after a
minute at a maintenance pass. Here it goes back to the queue once it has
sat there STRANDED_S.

The same thread stands in for RQ's scheduler when it is gone: a retry waiting
in the scheduled registry more than SCHEDULER_LATE_S past its time is
queued here. RQ's scheduler process dies with a Redis outage and its lock
outlives it (61 s, restored from the AOF), and a worker only restarts it at
its maintenance pass; retries would wait that long.
"""

from __future__ import annotations

import threading
import time

import redis
from rq import Queue
from rq.job import Job

from services.common.keys import Keys
from services.common.logging import get_logger
from services.common.settings import Settings
from services.consumers.worker import count_failure

log = get_logger(__name__)
EXPIRED = 1  # started-registry score given to an abandoned job: long past, so cleanup(EXPIRED) takes it
SCHEDULER_LATE_S = 5  # a live RQ scheduler queues due jobs within a second
STRANDED_S = 5  # a live worker marks a popped job started within milliseconds


class Reaper:
    def __init__(self, settings: Settings, client: redis.Redis, worker_name: str) -> None:
        self.settings = settings
        self.redis = client
        self.keys = Keys(settings.KEY_PREFIX)
        self.name = worker_name
        self.queue = Queue(settings.QUEUE_NAME, connection=client)
        self.ttl_ms = int(settings.WORKER_DEAD_AFTER_S * 1000)
        self.stop = threading.Event()

    def beat(self) -> None:
        self.redis.set(self.keys.worker_alive(self.name), 1, px=self.ttl_ms)

    def sweep(self) -> tuple[list[str], list[str]]:
        """Under the shared lock: requeue abandoned jobs, queue late retries; returns the ids of both."""
        if not self.redis.set(self.keys.reaper_lock, self.name, nx=True, px=self.ttl_ms):
            return [], []  # another worker is at it
        try:
            return self.reap() + self.stranded(), self.late_retries()
        finally:
            self.redis.delete(self.keys.reaper_lock)

    def reap(self) -> list[str]:
        """Requeue (or fail) the started jobs of workers without a heartbeat; returns their ids."""
        registry = self.queue.started_job_registry
        entries = registry.get_job_and_execution_ids(cleanup=False)
        if not entries:
            return []
        jobs = Job.fetch_many([job_id for job_id, _ in entries], connection=self.redis)
        owners = {job.id: job.worker_name for job in jobs if job is not None and job.worker_name}
        names = sorted(set(owners.values()))
        alive = dict(zip(names, self.redis.mget([self.keys.worker_alive(n) for n in names]), strict=True))
        dead = [(job_id, ex) for job_id, ex in entries if job_id in owners and alive[owners[job_id]] is None]
        if not dead:
            return []
        self.redis.zadd(registry.key, {f"{job_id}:{execution}": EXPIRED for job_id, execution in dead}, xx=True)
        registry.cleanup(timestamp=EXPIRED, exception_handlers=[count_failure])
        ids = [job_id for job_id, _ in dead]
        log.warning("worker.abandoned_jobs_requeued", jobs=ids, workers=sorted({owners[i] for i in ids}))
        return ids

    def stranded(self) -> list[str]:
        """Put back on the queue the jobs left in RQ's intermediate list; returns their ids."""
        intermediate = self.queue.intermediate_queue
        started = set(self.queue.started_job_registry.get_job_ids(cleanup=False))
        requeued = []
        for job_id in intermediate.get_job_ids():
            if job_id in started or intermediate.set_first_seen(job_id):
                continue  # marked started, or seen for the first time now
            first_seen = intermediate.get_first_seen(job_id)
            if first_seen and time.time() - first_seen.timestamp() > STRANDED_S:
                job = self.queue.fetch_job(job_id)
                if self.redis.lrem(intermediate.key, 1, job_id) and job is not None:
                    self.queue.enqueue_job(job)
                    requeued.append(job_id)
        if requeued:
            log.warning("worker.stranded_jobs_requeued", jobs=requeued)
        return requeued

    def late_retries(self) -> list[str]:
        """Queue the scheduled jobs RQ's scheduler should have queued SCHEDULER_LATE_S ago; returns their ids."""
        registry = self.queue.scheduled_job_registry
        due = registry.get_jobs_to_schedule(int(time.time()) - SCHEDULER_LATE_S)
        queued = []
        for job in Job.fetch_many(due, connection=self.redis):
            if job is not None and registry.remove(job):  # removed here: a scheduler waking now will not queue it
                self.queue.enqueue_job(job)
                queued.append(job.id)
        if queued:
            log.warning("worker.late_retries_queued", jobs=queued)
        return queued

    def run(self) -> None:
        every = self.settings.WORKER_DEAD_AFTER_S / 3
        while not self.stop.wait(every):
            try:
                self.beat()
                self.sweep()
            except redis.RedisError as exc:  # Redis restarting: the worker itself reconnects too
                log.warning("worker.reaper_failed", error=str(exc))
            except Exception:
                log.exception("worker.reaper_failed")
        self.redis.delete(self.keys.worker_alive(self.name))

    def start(self) -> threading.Thread:
        """Beat once before returning, so the worker never holds a job without a heartbeat."""
        self.beat()
        thread = threading.Thread(target=self.run, name="reaper", daemon=True)
        thread.start()
        return thread
