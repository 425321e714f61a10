"""`mdstack worker` / `python -m services.consumers`: an RQ worker running calc-a and calc-b."""

from __future__ import annotations

import argparse

import redis
from tenacity import Retrying, retry_if_exception_type, wait_exponential

from services.common.health import readiness_problems_sync, serve_health
from services.common.logging import configure_logging, get_logger, library_level
from services.common.settings import load_settings
from services.consumers import context
from services.consumers.reaper import Reaper
from services.consumers.rttm.ticker import Ticker
from services.consumers.worker import make_worker

log = get_logger(__name__)


def main(argv: list[str] | None = None) -> int:
    settings = load_settings(SERVICE_NAME="worker")
    parser = argparse.ArgumentParser(prog="mdstack worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--metrics-port", type=int, default=settings.METRICS_PORT, help="0 disables /metrics")
    parser.add_argument("--name", default=None, help="worker name (default: RQ's)")
    parser.add_argument("--no-rttm", action="store_true", help="do not take part in the RTTM ticker election")
    args = parser.parse_args(argv)
    configure_logging("worker", settings.LOG_LEVEL)
    ctx = context.configure(settings)
    if args.metrics_port:
        serve_health(
            settings.API_HOST,
            args.metrics_port,
            lambda: readiness_problems_sync(ctx.redis, settings, postgres="unused"),
        )
    worker = make_worker(ctx, args.name)
    reaper = Reaper(settings, ctx.redis, worker.name)
    reaper.start()
    if not args.no_rttm:
        Ticker(settings, ctx.redis, worker.name).start()
    log.info("worker.started", queue=settings.QUEUE_NAME, api=settings.api_url, metrics_port=args.metrics_port)
    while True:
        try:
            worker.work(burst=args.burst, with_scheduler=True, logging_level=library_level())
        except redis.RedisError as exc:  # raised by RQ's own teardown while Redis is still away
            log.error("worker.redis_lost", error=str(exc))
        # RQ's loop also ends on a Redis error in the middle of a job ("unhandled exception, quitting");
        # only a stop request or the end of a burst should end the process.
        # RQ sets _shutdown_requested_date on SIGTERM/SIGINT whether busy or idle (_stop_requested only when busy).
        if args.burst or getattr(worker, "_shutdown_requested_date", None) is not None:
            return 0
        wait_for_redis(ctx.redis)
        # A new name: the old one may still be registered. Its job is left started; the reaper requeues it.
        worker = make_worker(ctx, None)
        reaper.name = worker.name
        log.warning("worker.restarted", worker=worker.name)


def wait_for_redis(client: redis.Redis) -> None:
    for attempt in Retrying(wait=wait_exponential(0.1, max=5), retry=retry_if_exception_type(redis.RedisError)):
        with attempt:
            client.ping()


if __name__ == "__main__":
    raise SystemExit(main())
