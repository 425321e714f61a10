"""The feeder's knobs, each declared once: an env var and a `--flag` (pydantic-settings' CLI source).

A field's name is its flag (`target_url` is `--target-url`); `knob(env=...)` names its env var (the
names the stack has always used: TPS, SYMBOLS, FEEDER_BATCH, TRADE_*). Flags override the environment.
What the other services read (credentials, LOG_LEVEL, API_HOST) stays in the shared `Settings`.
"""

from __future__ import annotations

import argparse
import math
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    CliSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from services.common.symbol_values import parse_symbol_values
from services.feeder.defaults import HTTP_CONCURRENCY

PROG = "mdstack feeder"
DESCRIPTION = "Post simulated ticks and trade-pipeline events to the ingest API."
# Default --connections (capped by FEEDER_MAX_INFLIGHT). httpx's pool slows down sharply with many concurrent
# requests (encode/httpx#3215; here ~1,500 req/s at 8 in flight, ~200 req/s at 64).

N = TypeVar("N", int, float)


def positive(value: N) -> N:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"must be > 0, got {value}")
    return value


def non_negative(value: float) -> float:
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"must be >= 0, got {value}")
    return value


def share(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(f"must be between 0 and 1, got {value}")
    return value


Positive = Annotated[N, AfterValidator(positive)]
NonNegative = Annotated[float, AfterValidator(non_negative)]
Share = Annotated[float, AfterValidator(share)]


def knob(default: Any, env: str, help: str, metavar: str | None = None) -> Any:
    """A field that is the env var `env` and a flag; the help text says both."""
    return Field(default, description=f"{help} (env {env})", json_schema_extra={"env": env, "metavar": metavar})


def _extra(field: FieldInfo) -> dict[str, Any]:
    extra = field.json_schema_extra
    assert isinstance(extra, dict), "every feeder field is declared with knob()"
    return extra


def env_name(field: FieldInfo) -> str:
    return str(_extra(field)["env"])


class FeederSettings(BaseSettings):
    """One feeder run: what to send, how fast, where, and for how long."""

    model_config = SettingsConfigDict(
        extra="ignore",
        cli_kebab_case=True,
        cli_implicit_flags="toggle",  # --quiet, not --quiet/--no-quiet
        cli_hide_none_type=True,
    )

    # What ends a run (neither: it runs until SIGINT/SIGTERM).
    duration: Positive[float] | None = knob(None, "FEEDER_DURATION_S", "stop after this many seconds", "SECONDS")
    count: Positive[int] | None = knob(None, "FEEDER_COUNT", "stop after N ticks", "N")
    seed: int | None = knob(None, "FEEDER_SEED", "price/volume sequence seed (default: random, reported)", "N")
    # Ticks.
    tps: Positive[float] = knob(50.0, "TPS", "ticks per second across all symbols", "R")
    symbols: str = knob("BTCUSDT,ETHUSDT,SOLUSDT,XAUUSD,EURUSD", "SYMBOLS", "comma-separated symbols", "A,B")
    volatility: str = knob(
        "",
        "FEEDER_VOLATILITY",
        "annualised volatility per symbol over the built-in ones (walk.py), e.g. BTCUSDT=0.8,ACME=0.4",
        "SYM=VOL,...",
    )
    target_url: str = knob("http://127.0.0.1:8000", "TARGET_URL", "ingest API base URL", "URL")
    transport: Literal["http", "kafka"] = knob(
        "http", "FEEDER_TRANSPORT", "post to the ingest API, or produce to the Kafka topics (KAFKA_*)", "http|kafka"
    )
    batch: Positive[int] = knob(1, "FEEDER_BATCH", "ticks per POST; >1 uses /ingest/ticks", "N")
    source: str = knob("sim", "FEEDER_SOURCE", "the ticks' `source`", "NAME")
    max_inflight: Positive[int] = knob(
        512, "FEEDER_MAX_INFLIGHT", "requests in progress at once, retries included", "N"
    )
    connections: Positive[int] | None = knob(
        None,
        "FEEDER_CONNECTIONS",
        f"HTTP requests on the wire at once (default {HTTP_CONCURRENCY}, at most max-inflight)",
        "N",
    )
    # Outputs.
    summary_json: Path | None = knob(None, "FEEDER_SUMMARY_JSON", "write the end-of-run summary here", "PATH")
    acked_ids: Path | None = knob(None, "FEEDER_ACKED_IDS", "write every acknowledged tick event_id here", "PATH")
    acked_events: Path | None = knob(
        None, "FEEDER_ACKED_EVENTS", "write every acknowledged trade-pipeline event here (kind id)", "PATH"
    )
    quiet: bool = knob(False, "FEEDER_QUIET", "no progress lines")
    metrics_port: int = knob(0, "METRICS_PORT", "serve /health/* and /metrics here; 0: off", "PORT")
    # Trade simulation: trade lifecycles through the pipeline (services/feeder/pipeline.py).
    trade_tps: NonNegative = knob(5.0, "TRADE_TPS", "trades started per second; 0: off", "R")
    fail_rate: Share = knob(0.03, "TRADE_FAIL_RATE", "share of trades failing validation (DLQ)", "F")
    error_rate: Share = knob(0.02, "TRADE_ERROR_RATE", "share of trades hitting an error at pms-core", "F")
    stuck_rate: Share = knob(0.005, "TRADE_STUCK_RATE", "share of trades that stop before a terminal stage", "F")
    trade_partitions: Positive[int] = knob(3, "TRADE_PARTITIONS", "partitions per simulated topic", "N")
    trade_latency: str = knob(
        "",
        "TRADE_LATENCY_MS",
        "stage latency medians (and lognormal spreads), e.g. analytics=120",
        "STAGE=MS[:SPREAD],...",
    )
    trade_latency_spread: NonNegative = knob(
        0.5, "TRADE_LATENCY_SPREAD", "lognormal spread of stage latencies", "SPREAD"
    )
    queue_metrics_interval: Positive[float] = knob(
        2.0, "TRADE_METRICS_INTERVAL_S", "how often each consumer reports its queue metrics", "SECONDS"
    )

    @model_validator(mode="after")
    def _resolve(self) -> FeederSettings:
        if not self.symbol_list:
            raise ValueError("no symbols: set SYMBOLS or --symbols")
        if self.fail_rate + self.error_rate + self.stuck_rate > 1.0 + 1e-9:
            raise ValueError("TRADE_FAIL_RATE + TRADE_ERROR_RATE + TRADE_STUCK_RATE must not exceed 1")
        self.volatilities  # noqa: B018 -- a bad FEEDER_VOLATILITY is refused here, not mid-run
        self.trades  # noqa: B018 -- a bad TRADE_LATENCY_MS is refused here, not mid-run
        self.target_url = self.target_url.rstrip("/")
        if self.connections is None:
            self.connections = min(HTTP_CONCURRENCY, self.max_inflight)
        if self.seed is None:  # drawn once and reported, so the run can be replayed
            self.seed = secrets.randbits(32)
        return self

    @property
    def symbol_list(self) -> list[str]:
        return [s.strip() for s in self.symbols.split(",") if s.strip()]

    @property
    def volatilities(self) -> dict[str, float]:
        """FEEDER_VOLATILITY as symbol -> annualised volatility."""
        try:  # 1,000% a year is past any market's
            return parse_symbol_values(self.volatility, lambda vol: 0 < vol <= 10, "SYMBOL=VOL, 0 < VOL <= 10")
        except ValueError as exc:
            raise ValueError(f"--volatility / FEEDER_VOLATILITY: {exc}") from None

    @property
    def trades(self) -> Any:  # TradeConfig: trades.py imports this module for the defaults
        from services.feeder.trades import TradeConfig, parse_latencies

        try:
            latencies = parse_latencies(self.trade_latency, self.trade_latency_spread)
        except ValueError as exc:
            raise ValueError(f"--trade-latency / TRADE_LATENCY_MS: {exc}") from None
        return TradeConfig(
            tps=self.trade_tps,
            fail_rate=self.fail_rate,
            error_rate=self.error_rate,
            stuck_rate=self.stuck_rate,
            partitions=self.trade_partitions,
            metrics_interval_ms=round(self.queue_metrics_interval * 1000),
            latencies=latencies,
        )

    def summary_figures(self) -> dict[str, Any]:
        """The settings the end-of-run summary reports beside the counters."""
        return {
            "tps_target": self.tps,
            "batch": self.batch,
            "max_inflight": self.max_inflight,
            "connections": self.connections,
            "symbols": self.symbol_list,
            "seed": self.seed,
            "target_url": self.target_url,
            "transport": self.transport,
            "trade_tps_target": self.trade_tps,
        }

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Env var -> field name."""
        return {env_name(f): name for name, f in cls.model_fields.items()}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, KnobEnv(settings_cls)


class KnobEnv(EnvSettingsSource):
    """Reads each field from the env var `knob()` named (not from the field name: `batch` is FEEDER_BATCH)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = env_name(field)
        value = self.env_vars.get(name if self.case_sensitive else name.lower())
        return value, field_name, False


def cli_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)


def explain(exc: ValidationError) -> str:
    """One line naming each bad flag / env var and what is wrong with it."""
    fields = FeederSettings.model_fields
    parts = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"] and error["loc"][0] in fields:
            name = str(error["loc"][0])
            got = "" if error["type"] == "value_error" else f", got {error['input']!r}"
            message = f"--{name.replace('_', '-')} / {env_name(fields[name])}: {message}{got}"
        parts.append(message)
    return "; ".join(parts)


def parse_args(argv: Sequence[str] | None = None) -> FeederSettings:
    """The environment with the command line over it; a bad value exits 2 with the usage line, like argparse."""
    parser = cli_parser()
    source: CliSettingsSource[Any] = CliSettingsSource(FeederSettings, root_parser=parser)
    for action in parser._actions:  # the CLI source names values by type ("float"); say what they are
        if (field := FeederSettings.model_fields.get(action.dest)) is not None and action.metavar:
            action.metavar = _extra(field)["metavar"] or action.metavar
    try:
        return FeederSettings(_cli_settings_source=source(args=list(argv) if argv is not None else True))
    except ValidationError as exc:
        parser.error(explain(exc))
