"""`mdstack feeder` / `python -m services.feeder`: post simulated ticks and trade-pipeline events to the ingest API."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from services.common.health import serve_health, unavailable
from services.common.logging import configure_logging
from services.common.settings import load_settings
from services.feeder.plan import ConfigError, FeederOptions
from services.feeder.run import run_feeder

N = TypeVar("N", int, float)


def positive(kind: Callable[[str], N]) -> Callable[[str], N]:
    def parse(text: str) -> N:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mdstack feeder", description=__doc__)
    p.add_argument("--duration", type=positive(float), metavar="SECONDS", help="stop after this long")
    p.add_argument("--count", type=positive(int), metavar="N", help="stop after N ticks")
    p.add_argument("--seed", type=int, help="price/volume sequence seed (default: random, reported)")
    p.add_argument("--tps", type=positive(float), help="ticks per second across all symbols (env TPS)")
    p.add_argument("--symbols", help="comma-separated symbols (env SYMBOLS)")
    p.add_argument("--target-url", help="ingest API base URL (env TARGET_URL)")
    p.add_argument("--batch", type=positive(int), help="ticks per POST; >1 uses /ingest/ticks (env FEEDER_BATCH)")
    p.add_argument(
        "--connections", type=positive(int), metavar="N", help="HTTP requests on the wire at once (default 16)"
    )
    p.add_argument("--summary-json", type=Path, metavar="PATH", help="write the end-of-run summary here")
    p.add_argument("--acked-ids", type=Path, metavar="PATH", help="write every acknowledged tick event_id here")
    p.add_argument(
        "--acked-events", type=Path, metavar="PATH", help="write every acknowledged trade-pipeline event here (kind id)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--metrics-port", type=int, help="serve /health/* and /metrics here (env METRICS_PORT; 0: off)")
    t = p.add_argument_group("trade simulation", "trade lifecycles through the pipeline (services/feeder/pipeline.py)")
    t.add_argument("--trade-tps", type=non_negative, help="trades started per second; 0: off (env TRADE_TPS, 5)")
    t.add_argument("--fail-rate", type=share, help="share failing validation (env TRADE_FAIL_RATE, 0.03)")
    t.add_argument("--error-rate", type=share, help="share hitting an error at pms-core (env TRADE_ERROR_RATE, 0.02)")
    t.add_argument("--stuck-rate", type=share, help="share stuck before the end (env TRADE_STUCK_RATE, 0.005)")
    t.add_argument(
        "--trade-latency",
        metavar="STAGE=MS[:SPREAD],...",
        help="stage latency medians (and lognormal spreads), e.g. analytics=120 (env TRADE_LATENCY_MS)",
    )
    t.add_argument(
        "--queue-metrics-interval",
        type=positive(float),
        metavar="SECONDS",
        help="queue-metric snapshot period (env TRADE_METRICS_INTERVAL_S, 2)",
    )
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def target_problems(target_url: str) -> list[str]:
    """Ready while the API it feeds answers (the feeder has no servers of its own)."""
    try:
        httpx.get(f"{target_url}/health/liveness", timeout=2).raise_for_status()
    except httpx.HTTPError as exc:
        return [unavailable("target", exc)]  # the URL and the error go to the log only
    return []


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings(SERVICE_NAME="feeder")
    configure_logging("feeder", settings.LOG_LEVEL)
    metrics_port = settings.METRICS_PORT if args.metrics_port is None else args.metrics_port
    if metrics_port:
        target = args.target_url or settings.TARGET_URL
        serve_health(settings.API_HOST, metrics_port, lambda: target_problems(target), settings.READINESS_CACHE_S)
    # httpx logs every request at INFO: thousands of lines a second; progress lines say it better.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()] if args.symbols else None
    options = FeederOptions(
        duration_s=args.duration,
        count=args.count,
        seed=args.seed,
        tps=args.tps,
        symbols=symbols,
        target_url=args.target_url,
        batch=args.batch,
        connections=args.connections,
        summary_json=args.summary_json,
        acked_ids=args.acked_ids,
        acked_events=args.acked_events,
        quiet=args.quiet,
        trade_tps=args.trade_tps,
        fail_rate=args.fail_rate,
        error_rate=args.error_rate,
        stuck_rate=args.stuck_rate,
        trade_latency=args.trade_latency,
        queue_metrics_interval_s=args.queue_metrics_interval,
    )
    try:
        summary = asyncio.run(run_feeder(settings, options))
    except ConfigError as exc:
        build_parser().error(str(exc))  # exits 2 with the usage line
    return summary.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
