"""`mdstack flusher` / `python -m services.flusher`: batches ticks into Postgres.

It also keeps every table to its retention (retention.py): once before flushing, then every
RETENTION_EVERY_S in a thread.
"""

from __future__ import annotations

import argparse

from services.common.health import PostgresProbe, readiness_problems_sync, serve_health
from services.common.logging import configure_logging
from services.common.redis import sync_redis
from services.common.settings import load_settings
from services.flusher.retention import Maintainer
from services.flusher.writer import Flusher


def main(argv: list[str] | None = None) -> int:
    settings = load_settings(SERVICE_NAME="flusher")
    parser = argparse.ArgumentParser(prog="mdstack flusher", description=__doc__)
    parser.add_argument("--metrics-port", type=int, default=settings.METRICS_PORT, help="0 disables /metrics")
    parser.add_argument("--name", default=None, help="consumer name (default FLUSHER_NAME or the host name)")
    args = parser.parse_args(argv)
    configure_logging("flusher", settings.LOG_LEVEL)
    client = sync_redis(settings)
    flusher = Flusher(settings, client, args.name)
    if args.metrics_port:
        probe = PostgresProbe(settings.pg_dsn)  # one connection for every probe, not one per request
        serve_health(
            settings.API_HOST,
            args.metrics_port,
            lambda: readiness_problems_sync(client, probe),
            settings.READINESS_CACHE_S,
        )
    flusher.install_signal_handlers()
    if settings.RETENTION_EVERY_S > 0:
        maintainer = Maintainer(settings, flusher.stop)
        maintainer.run_once()  # before the first batch: today's partition exists and old days are gone
        maintainer.start()
    flusher.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
