"""`mdstack worker` / `python -m services.consumers`: an RQ worker running calc-a and calc-b."""

from __future__ import annotations

import argparse

from services.common.health import readiness_problems_sync, serve_health
from services.common.logging import configure_logging, get_logger, library_level
from services.common.settings import load_settings
from services.consumers import context
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
            lambda: readiness_problems_sync(ctx.redis, settings),
        )
    worker = make_worker(ctx, args.name)
    if not args.no_rttm:
        Ticker(settings, ctx.redis, worker.name).start()
    log.info("worker.started", queue=settings.QUEUE_NAME, api=settings.api_url, metrics_port=args.metrics_port)
    worker.work(burst=args.burst, with_scheduler=True, logging_level=library_level())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
