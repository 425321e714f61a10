"""Abandoned jobs: a worker killed mid-job gets its batch run again within seconds.

RQ finds a job whose worker died only when the job's started-registry entry
expires (job timeout + 60 s for a SimpleWorker) and its maintenance pass runs
(every 10 minutes). Instead, every worker process keeps a short-lived
heartbeat key naming the executions its RQ worker is running right now
(`job_id:execution_id`, as in the started registry; empty when idle). A
background thread writes it from the worker object while jobs run (the GIL
lets it), and the same thread in every live worker looks, under a shared
lock, for abandoned started jobs:

- the worker named in the execution (RQ's `rq:execution:*` hash) has no
  heartbeat: it died, or the hash itself is gone;
- or its live heartbeat does not name the execution, and the execution was
  created more than WORKER_DEAD_AFTER_S ago (the heartbeat may be a beat
  behind a job that has just started). This is the worker that lost Redis
  mid-job and carries on, or an entry left by a pipeline whose reply was
  lost with the connection: nothing will ever finish that entry.

Those are handed to RQ's own `StartedJobRegistry.cleanup`, which retries
them (an abandoned run uses one of the job's retries) or, with no retries
left, fails them. Jobs are safe to run twice (see tasks.py), so a worker that
was only slow costs a re-run, not a wrong result.

A job popped from the queue by a worker that lost Redis (or died) before
marking it started stays in RQ's intermediate list; RQ requeues it after a
minute at a maintenance pass. Here it goes back to the queue once it has
sat there STRANDED_S. That includes a job whose execution was created but
which was never marked started (its status still `queued`): cleanup drops
its registry entry, and the stranded sweep requeues it.

Batches pending STRANDED_S with no job queued (an API that owed a job died
before enqueuing it, see commit.py) get a job of their own.

When no job is left anywhere and nothing is pending, the queued-items count (commit.py's bound on
queued work) must be zero; one left over by a batch that expired unread is
set back to zero.

The same thread stands in for RQ's scheduler when it is gone: a retry waiting
in the scheduled registry more than SCHEDULER_LATE_S past its time is
queued here. RQ's scheduler process dies with a Redis outage and its lock
outlives it (61 s, restored from the AOF), and a worker only restarts it at
its maintenance pass; retries would wait that long.
"""

from __future__ import annotations

import threading
import time
import uuid

import redis
from rq.executions import Execution

from services.common.jobs import BatchJob, enqueue_batch_job, job_queue
from services.common.keys import Keys
from services.common.logging import get_logger
from services.common.scripts import register
from services.common.settings import Settings
from services.consumers.defaults import SCHEDULER_LATE_S, STRANDED_S
from services.consumers.worker import Worker, count_failure

log = get_logger(__name__)
EXPIRED = 1  # started-registry score given to an abandoned job: long past, so cleanup(EXPIRED) takes it


class Reaper:
    def __init__(self, settings: Settings, client: redis.Redis, worker: Worker) -> None:
        self.settings = settings
        self.redis = client
        self.keys = Keys(settings.KEY_PREFIX)
        self.worker = worker
        self.queue = job_queue(settings, client)
        self.ttl_ms = int(settings.WORKER_DEAD_AFTER_S * 1000)
        self.stop = threading.Event()

    @property
    def name(self) -> str:
        return self.worker.name

    def running(self) -> str:
        """The started-registry entries of what the worker runs now, space-separated ("" when idle)."""
        executions = list(self.worker.executions.values())  # one C-level copy: safe against the worker's thread
        return " ".join(sorted(execution.composite_key for execution in executions))

    def beat(self) -> None:
        self.redis.set(self.keys.worker_alive(self.name), self.running(), px=self.ttl_ms)

    def serve(self, worker: Worker) -> None:
        """Beat for `worker` from now on (a new RQ worker after a lost connection), before it takes a job.

        The old worker's heartbeat goes at once: whatever it left started is abandoned, and reaped now."""
        old = self.name
        self.worker = worker
        try:
            self.beat()
            self.redis.delete(self.keys.worker_alive(old))
        except redis.RedisError as exc:  # Redis gone again: the thread beats at its next round
            log.warning("worker.reaper_failed", error=str(exc))

    def sweep(self) -> tuple[list[str], list[str]]:
        """Under the shared lock: requeue abandoned jobs, queue late retries; returns the ids of both."""
        if not self.redis.set(self.keys.reaper_lock, self.name, nx=True, px=self.ttl_ms):
            return [], []  # another worker is at it
        try:
            found = self.reap() + self.stranded(), self.late_retries()
            self.unclaimed()
            self.settle_queued()
            return found
        finally:
            self.redis.delete(self.keys.reaper_lock)

    def reap(self) -> list[str]:
        """Requeue (or fail) the abandoned started jobs (see the module docstring); returns their ids."""
        return self.hand_back(self.abandoned(self.queue.started_job_registry.get_job_and_execution_ids(cleanup=False)))

    def hand_back(self, abandoned: dict[str, str]) -> list[str]:
        """Give `abandoned` entries to RQ's cleanup; returns the ids of the jobs whose entries were still there."""
        registry = self.queue.started_job_registry
        with self.redis.pipeline(transaction=False) as pipe:
            for entry in abandoned:  # xx: an entry whose job finished since it was read is gone, and stays gone
                pipe.zadd(registry.key, {entry: EXPIRED}, xx=True, ch=True)
            handed = [entry for entry, changed in zip(abandoned, pipe.execute(), strict=True) if changed]
        if not handed:
            return []
        registry.cleanup(timestamp=EXPIRED, exception_handlers=[count_failure])
        ids = [entry.split(":")[0] for entry in handed]
        log.warning("worker.abandoned_jobs_requeued", jobs=ids, workers=sorted({abandoned[e] for e in handed}))
        return ids

    def abandoned(self, entries: list[tuple[str, str]]) -> dict[str, str]:
        """The started-registry entries (`job_id:execution_id`) nobody runs any more, with their worker's name."""
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id, execution_id in entries:
                pipe.hmget(Execution(execution_id, job_id, self.redis).key, "worker_name", "created_at")
            executions = [(_text(owner), float(created or 0)) for owner, created in pipe.execute()]
        names = sorted({owner for owner, _ in executions if owner})
        heartbeats = self.redis.mget([self.keys.worker_alive(n) for n in names]) if names else []
        beats = dict(zip(names, heartbeats, strict=True))
        grace_ends = time.time() - self.settings.WORKER_DEAD_AFTER_S  # created before: past the grace
        abandoned = {}
        for (job_id, execution_id), (owner, created) in zip(entries, executions, strict=True):
            entry, beat = f"{job_id}:{execution_id}", beats.get(owner)
            if beat is None or (entry not in _text(beat).split() and created < grace_ends):
                abandoned[entry] = owner or "?"  # "?": the execution's hash is gone, so is its worker
        return abandoned

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
        for job in BatchJob.fetch_many(due, connection=self.redis):
            if job is not None and registry.remove(job):  # removed here: a scheduler waking now will not queue it
                self.queue.enqueue_job(job)
                queued.append(job.id)
        if queued:
            log.warning("worker.late_retries_queued", jobs=queued)
        return queued

    def unclaimed(self) -> str | None:
        """A job for batches pending STRANDED_S with no job queued to take them (the API that owed one died
        before enqueuing it, or its enqueue failed); returns the new job's id."""
        oldest = self.redis.zrange(self.keys.pending, 0, 0, withscores=True)
        if not oldest or time.time() * 1000 - oldest[0][1] < STRANDED_S * 1000 or self.queue.count:
            return None
        job_id = uuid.uuid4().hex
        enqueue_batch_job(self.queue, self.settings, job_id)
        log.warning("worker.pending_batches_queued", trace_id=job_id, oldest_ms=int(oldest[0][1]))
        return job_id

    def settle_queued(self) -> int:
        """Zero the queued-items count when no job is left to read a batch; returns what was left over."""
        q = self.queue
        keys = [self.keys.queued, q.key, q.intermediate_queue.key, q.started_job_registry.key]
        settle = register(self.redis, "queued_settle", __package__)
        left = int(settle(keys=[*keys, q.scheduled_job_registry.key, self.keys.pending]))
        if left:
            log.warning("worker.queued_count_settled", items=left)
        return left

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


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")
