"""`mdstack feeder` / `python -m services.feeder`: post simulated ticks and trade-pipeline events to the ingest API
(or, with `--transport kafka`, produce them to the Kafka topics: kafka_sender.py).

Its knobs (env vars and flags) are `services/feeder/settings.py`; `--help` lists them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

from services.common.health import serve_health, unavailable
from services.common.logging import configure_logging
from services.common.settings import Settings, load_settings
from services.feeder.run import run_feeder
from services.feeder.settings import parse_args


def target_problems(target_url: str) -> list[str]:
    """Ready while the API it feeds answers (the feeder has no servers of its own)."""
    try:
        httpx.get(f"{target_url}/health/liveness", timeout=2).raise_for_status()
    except httpx.HTTPError as exc:
        return [unavailable("target", exc)]  # the URL and the error go to the log only
    return []


def broker_problems(settings: Settings) -> Callable[[], list[str]]:
    """With --transport kafka: ready while the broker answers (on a connection kept for the probes)."""
    from services.common import kafka

    probe = kafka.producer(settings)
    return lambda: [p for p in [kafka.broker_problem(probe)] if p]


def main(argv: list[str] | None = None) -> int:
    feeder = parse_args(argv)  # a bad flag or env var exits 2 here, naming it
    settings = load_settings(SERVICE_NAME="feeder")
    configure_logging("feeder", settings.LOG_LEVEL)
    if feeder.metrics_port:
        target = feeder.target_url
        check = broker_problems(settings) if feeder.transport == "kafka" else lambda: target_problems(target)
        serve_health(settings.API_HOST, feeder.metrics_port, check, settings.READINESS_CACHE_S)
    # httpx logs every request at INFO: thousands of lines a second; progress lines say it better.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(run_feeder(settings, feeder)).exit_code


if __name__ == "__main__":
    raise SystemExit(main())
