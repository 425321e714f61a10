"""`mdstack worker` / `python -m services.consumers`: an RQ worker running calc-a and calc-b.

A SimpleWorker runs jobs in its own process (no fork per job: forking costs
more than a batch). A failed job is retried JOB_RETRIES times with the
JOB_RETRY_INTERVALS back-off (the scheduler re-queues it), then stays in RQ's
failed registry with its traceback; failures are counted in /metrics.
"""

from __future__ import annotations

import argparse
import logging

from rq import Queue, SimpleWorker
from rq.job import Job

from services.common.health import check_postgres_sync, check_redis_sync, serve_health
from services.common.logging import configure_logging, get_logger
from services.common.settings import load_settings
from services.consumers import context, metrics

log = get_logger(__name__)


def count_failure(job: Job, exc_type: type, exc_value: BaseException, _tb: object) -> bool:
    metrics.JOBS.labels("failed").inc()
    log.error(
        "worker.job_failed",
        batch_id=job.id,
        error=f"{exc_type.__name__}: {exc_value}",
        retries_left=job.retries_left,
    )
    return True  # let RQ's own handler retry or move it to the failed registry


def main(argv: list[str] | None = None) -> int:
    settings = load_settings(SERVICE_NAME="worker")
    parser = argparse.ArgumentParser(prog="mdstack worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--metrics-port", type=int, default=settings.METRICS_PORT, help="0 disables /metrics")
    parser.add_argument("--name", default=None, help="worker name (default: RQ's)")
    args = parser.parse_args(argv)
    configure_logging("worker", settings.LOG_LEVEL)
    ctx = context.configure(settings)
    if args.metrics_port:
        serve_health(
            settings.API_HOST,
            args.metrics_port,
            lambda: [p for p in (check_redis_sync(ctx.redis), check_postgres_sync(settings)) if p],
        )
    queue = Queue(settings.QUEUE_NAME, connection=ctx.redis)
    worker = SimpleWorker([queue], connection=ctx.redis, name=args.name, exception_handlers=[count_failure])
    log.info(
        "worker.started", queue=settings.QUEUE_NAME, api=settings.api_url, metrics_port=args.metrics_port
    )
    worker.work(
        burst=args.burst, with_scheduler=True, logging_level=logging.getLevelName(logging.getLogger().level)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
