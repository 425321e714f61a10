"""`mdstack worker` / `python -m services.consumers`: an RQ worker running calc-a and calc-b."""

from __future__ import annotations

import argparse
import threading

import redis
from rq.exceptions import StopRequested

from services.common.health import serve_health
from services.common.logging import configure_logging, get_logger, library_level
from services.common.settings import load_settings
from services.consumers import context
from services.consumers.defaults import REDIS_WAIT_MAX_S
from services.consumers.reaper import Reaper
from services.consumers.rttm.ticker import Ticker
from services.consumers.worker import catch_stop, make_worker, readiness

log = get_logger(__name__)


def main(argv: list[str] | None = None) -> int:
    settings = load_settings(SERVICE_NAME="worker")
    parser = argparse.ArgumentParser(prog="mdstack worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--metrics-port", type=int, default=settings.METRICS_PORT, help="0 disables /metrics")
    parser.add_argument("--name", default=None, help="worker name (default: RQ's)")
    parser.add_argument("--no-rttm", action="store_true", help="do not take part in the RTTM ticker election")
    args = parser.parse_args(argv)
    stop = threading.Event()
    catch_stop(stop)  # before anything else: a SIGTERM while starting is a stop, not a kill
    configure_logging("worker", settings.LOG_LEVEL)
    ctx = context.configure(settings)
    worker = make_worker(ctx, args.name, stop)
    reaper = Reaper(settings, ctx.redis, worker)
    if args.metrics_port:
        # `worker` is looked up at each request: the current RQ worker, also after a restart below.
        serve_health(settings.API_HOST, args.metrics_port, lambda: readiness(worker, ctx), settings.READINESS_CACHE_S)
    reaper.start()
    if not args.no_rttm:
        Ticker(settings, ctx.redis, worker.name).start()
    log.info("worker.started", queue=settings.QUEUE_NAME, api=settings.api_url, metrics_port=args.metrics_port)
    while True:
        try:
            worker.work(burst=args.burst, with_scheduler=True, logging_level=library_level())
        except redis.RedisError as exc:  # raised by RQ's own teardown while Redis is still away
            log.error("worker.redis_lost", error=str(exc))
        except StopRequested:  # RQ's handler, still installed, fired after its loop had ended
            return 0
        catch_stop(stop)  # RQ's handlers belong to the finished worker
        # RQ's loop also ends on a Redis error in the middle of a job ("unhandled exception, quitting");
        # only a stop request or the end of a burst should end the process.
        # RQ sets _shutdown_requested_date on SIGTERM/SIGINT whether busy or idle (_stop_requested only when busy).
        if args.burst or worker._shutdown_requested_date is not None or not wait_for_redis(ctx.redis, stop):
            return 0
        # A new name: the old one may still be registered. Whatever it left started is abandoned: serve() drops
        # the old heartbeat, so the reaper requeues it at its next round.
        worker = make_worker(ctx, None, stop)
        reaper.serve(worker)
        log.warning("worker.restarted", worker=worker.name)


def wait_for_redis(client: redis.Redis, stop: threading.Event) -> bool:
    """Until Redis answers (True) or a stop is asked for (False)."""
    delay = 0.1
    while not stop.is_set():
        try:
            client.ping()
            return True
        except redis.RedisError:
            stop.wait(delay)
            delay = min(delay * 2, REDIS_WAIT_MAX_S)
    return False


if __name__ == "__main__":
    raise SystemExit(main())
