"""What a feeder run is asked to do: command-line options resolved against the settings into a plan."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from services.common.settings import Settings
from services.feeder.sender import HTTP_CONCURRENCY, RetryPolicy
from services.feeder.trades import TradeConfig, parse_latencies

PROGRESS_INTERVAL_S = 1.0  # how often the live progress line is written


class ConfigError(ValueError):
    """Settings and options that cannot make a run (no symbols, TPS <= 0, ...)."""


@dataclass(frozen=True)
class FeederOptions:
    """Command-line choices; `None` means "use the setting"."""

    duration_s: float | None = None
    count: int | None = None
    seed: int | None = None
    tps: float | None = None
    symbols: list[str] | None = None
    target_url: str | None = None
    batch: int | None = None
    connections: int | None = None
    summary_json: Path | None = None
    acked_ids: Path | None = None
    acked_events: Path | None = None
    quiet: bool = False
    progress_interval_s: float = PROGRESS_INTERVAL_S
    trade_tps: float | None = None
    fail_rate: float | None = None
    error_rate: float | None = None
    stuck_rate: float | None = None
    trade_latency: str | None = None  # `stage=median_ms[:spread],...`
    queue_metrics_interval_s: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class Plan:
    """Options resolved against settings: everything one run needs."""

    symbols: list[str]
    tps: float
    target_url: str
    batch: int
    source: str
    max_inflight: int
    connections: int
    seed: int
    username: str
    password: str
    trades: TradeConfig = field(default_factory=TradeConfig)

    @classmethod
    def resolve(cls, settings: Settings, options: FeederOptions) -> Plan:
        plan = cls(
            symbols=options.symbols or settings.symbols,
            tps=options.tps if options.tps is not None else settings.TPS,
            target_url=(options.target_url or settings.TARGET_URL).rstrip("/"),
            batch=options.batch if options.batch is not None else settings.FEEDER_BATCH,
            source=settings.FEEDER_SOURCE,
            max_inflight=settings.FEEDER_MAX_INFLIGHT,
            connections=options.connections or min(HTTP_CONCURRENCY, settings.FEEDER_MAX_INFLIGHT),
            # No seed given: draw one and report it, so the run can be replayed.
            seed=options.seed if options.seed is not None else secrets.randbits(32),
            username=settings.INGEST_USERNAME,
            password=settings.INGEST_PASSWORD,
            trades=resolve_trades(settings, options),
        )
        if not plan.symbols:
            raise ConfigError("no symbols: set SYMBOLS or --symbols")
        if not (plan.tps > 0 and math.isfinite(plan.tps)):
            raise ConfigError(f"TPS must be a positive number, got {plan.tps}")
        if plan.batch < 1:
            raise ConfigError(f"the batch size must be at least 1, got {plan.batch}")
        if plan.max_inflight < 1:
            raise ConfigError(f"FEEDER_MAX_INFLIGHT must be at least 1, got {plan.max_inflight}")
        if plan.connections < 1:
            raise ConfigError(f"connections must be at least 1, got {plan.connections}")
        if problems := plan.trades.problems():
            raise ConfigError("; ".join(problems))
        return plan


def resolve_trades(settings: Settings, options: FeederOptions) -> TradeConfig:
    def pick(option: float | None, setting: float) -> float:
        return option if option is not None else setting

    latency_text = options.trade_latency if options.trade_latency is not None else settings.TRADE_LATENCY_MS
    try:
        latencies = parse_latencies(latency_text, settings.TRADE_LATENCY_SPREAD)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    interval_s = pick(options.queue_metrics_interval_s, settings.TRADE_METRICS_INTERVAL_S)
    return TradeConfig(
        tps=pick(options.trade_tps, settings.TRADE_TPS),
        fail_rate=pick(options.fail_rate, settings.TRADE_FAIL_RATE),
        error_rate=pick(options.error_rate, settings.TRADE_ERROR_RATE),
        stuck_rate=pick(options.stuck_rate, settings.TRADE_STUCK_RATE),
        partitions=settings.TRADE_PARTITIONS,
        metrics_interval_ms=round(interval_s * 1000),
        latencies=latencies,
    )
