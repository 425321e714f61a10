"""The RQ worker of mdstack, built in one place for the entry point and the tests.

A SimpleWorker runs jobs in its own process (no fork per job: forking costs
more than a batch). A failed job is retried JOB_RETRIES times with the
JOB_RETRY_INTERVALS back-off (the scheduler re-queues it), then stays in RQ's
failed registry with its traceback; every failure is counted in /metrics.
"""

from __future__ import annotations

from rq import Queue, SimpleWorker
from rq.job import Job

from services.common.logging import get_logger
from services.consumers import metrics, tasks
from services.consumers.context import WorkerContext

log = get_logger(__name__)


def count_failure(job: Job, exc_type: type, exc_value: BaseException, _tb: object) -> bool:
    metrics.JOBS.labels("failed").inc()
    log.error(
        "worker.job_failed", trace_id=job.id, error=f"{exc_type.__name__}: {exc_value}", retries_left=job.retries_left
    )
    if not job.retries_left and "batch_id" in job.kwargs:  # no retry follows: nothing will read the batch
        tasks.forget_batch(job.kwargs["batch_id"])
    return True  # go on to RQ's own handling: retry, or the failed registry


def make_worker(ctx: WorkerContext, name: str | None = None) -> SimpleWorker:
    queue = Queue(ctx.settings.QUEUE_NAME, connection=ctx.redis)
    return SimpleWorker([queue], connection=ctx.redis, name=name, exception_handlers=[count_failure])
