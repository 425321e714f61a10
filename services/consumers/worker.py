"""The RQ worker of mdstack, built in one place for the entry point and the tests.

A SimpleWorker runs jobs in its own process (no fork per job: forking costs
more than a batch). A failed job is retried JOB_RETRIES times with the
JOB_RETRY_INTERVALS back-off (the scheduler re-queues it), then stays in RQ's
failed registry with its traceback; every failure is counted in /metrics.
Jobs are JSON and only `process_batch(batch_id)` runs (services/common/jobs.py):
anything else fails at once, unretried, without being called.

RQ installs its warm-shutdown handlers (SIGTERM/SIGINT: finish the job, then
stop) only inside `work()`, after registering the worker and starting its
scheduler. Until then the process's own handler (`catch_stop`) records a stop
request, and `Worker` passes it on to RQ's loop, which then ends before it
takes a job. `Worker.can_stop` is set once RQ's handlers are in place: the
process is ready only from then on.

What a job's failure leads to (the worker raises nothing of its own):

    RefusedJob (jobs.py)      not process_batch(batch_id) in JSON: failed at once, never called, never retried
    redis.RedisError          Redis away mid-job: the job fails and is retried; the worker reconnects
    httpx.HTTPError           the API refused or missed /internal/agg-update: retried like any failure
    any other exception       retried JOB_RETRIES times; then failed for good, its batches dropped
                              (tasks.forget_batch: their items are in Postgres, only their views are lost)
    (a killed worker)         its started job is found by the reaper and handed back to RQ (reaper.py)
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.utils import now

from services.common.health import Readiness, readiness_problems_sync
from services.common.jobs import PROCESS_BATCH, SERIALIZER, BatchJob, batch_id_of, job_queue
from services.common.logging import get_logger
from services.consumers import metrics, tasks
from services.consumers.context import WorkerContext

log = get_logger(__name__)


def count_failure(job: Job, exc_type: type, exc_value: BaseException, _tb: object) -> bool:
    metrics.JOBS.labels("failed").inc()
    log.error(
        "worker.job_failed", trace_id=job.id, error=f"{exc_type.__name__}: {exc_value}", retries_left=job.retries_left
    )
    batch_id = batch_id_of(job)  # None for a refused job (not ours, or not JSON): its data is never read
    if not job.retries_left and batch_id is not None:  # no retry follows: nothing will read the batch
        tasks.forget_batch(batch_id)
    return True  # go on to RQ's own handling: retry, or the failed registry


class Worker(SimpleWorker):
    """A SimpleWorker that says when a SIGTERM would stop it cleanly, and keeps a stop asked for before."""

    def __init__(self, *args: object, stop: threading.Event | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.stop = stop or threading.Event()  # set by `catch_stop` before RQ's handlers are installed
        self.can_stop = threading.Event()

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """A job that is not `process_batch(batch_id)` in JSON (jobs.py) fails for good: BatchJob refuses to run it,
        and a retry would only be refused again."""
        if batch_id_of(job) is None:
            job.retries_left = 0
            log.error("worker.job_refused", trace_id=job.id, reason=f"not {PROCESS_BATCH}(batch_id) in JSON")
        return super().perform_job(job, queue, execution)

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()  # from here on a SIGTERM is RQ's warm shutdown
        if self.stop.is_set():  # asked for while starting: RQ's loop checks this before taking a job
            log.info("worker.stop_requested", phase="starting")
            self._stop_requested = True
            self._shutdown_requested_date = now()
        self.can_stop.set()


def make_worker(ctx: WorkerContext, name: str | None = None, stop: threading.Event | None = None) -> Worker:
    queue = job_queue(ctx.settings, ctx.redis)
    return Worker(
        [queue],
        connection=ctx.redis,
        name=name,
        exception_handlers=[count_failure],
        stop=stop,
        serializer=SERIALIZER,  # never pickle: see services/common/jobs.py
        job_class=BatchJob,
    )


def readiness(worker: Worker, ctx: WorkerContext) -> Readiness:
    """Redis answers, and the RQ loop runs with its SIGTERM handler in place (a stop now would be clean)."""
    ready = readiness_problems_sync(ctx.redis, postgres="unused")
    if not worker.can_stop.is_set():
        return Readiness([*ready.problems, "worker: RQ loop not running yet"], ready.degraded)
    return ready


def catch_stop(stop: threading.Event) -> None:
    """SIGTERM and SIGINT only set `stop`: for the moments no RQ loop runs (starting, restarting)."""
    pid = os.getpid()

    def record(signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != pid:  # RQ's forked scheduler before it installs its own handlers: die, as by default
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        # Nothing but the flag: a handler runs between any two bytecodes of the main thread, and logging
        # from here, creating a logger, once broke RQ's start ("dictionary changed size during iteration"
        # in logging's cache clearing, which the same thread was running).
        stop.set()

    signal.signal(signal.SIGTERM, record)
    signal.signal(signal.SIGINT, record)
