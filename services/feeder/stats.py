"""Feeder counters and ack-latency histograms; progress lines and the summary.

Units: counters count ticks unless named otherwise (`requests`, `attempts`,
`retries` and `behind` count HTTP requests; `behind` is how many requests had
to wait for a free in-flight slot; `max_lag` is how late the scheduler got). Latency is recorded in
microseconds from a request's *scheduled* send time to its answer, once per
acknowledged tick, so a slow server shows up as latency instead of silently
slowing the feeder down (no coordinated omission).

The trade simulation keeps its own counters (`TradeStats`): trades by what
became of them, and one `FeederStats` per event kind (trade, queue, dlq,
error, log) whose counters count events; there latency runs from the due
time of the oldest event in a request.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from services.feeder.pipeline import EVENT_KINDS
from services.feeder.trades import TradeCounters

LATENCY_MIN_US = 1
LATENCY_MAX_US = 60_000_000  # a minute; anything slower is clamped, not dropped
LATENCY_DIGITS = 3  # significant figures: 0.1% resolution


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LATENCY_MIN_US, LATENCY_MAX_US, LATENCY_DIGITS)


def us_to_ms(value_us: float) -> float:
    return round(value_us / 1000.0, 3)


def percentiles_ms(hist: HdrHistogram) -> dict[str, float]:
    if hist.get_total_count() == 0:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {
        "p50_ms": us_to_ms(hist.get_value_at_percentile(50.0)),
        "p95_ms": us_to_ms(hist.get_value_at_percentile(95.0)),
        "p99_ms": us_to_ms(hist.get_value_at_percentile(99.0)),
        "max_ms": us_to_ms(hist.get_max_value()),
    }


@dataclass
class Summary:
    """The end-of-run report; `as_dict()` is what `--summary-json` writes.

    acknowledged = accepted + duplicates. `rejected` are ticks the API refused
    item by item inside a 200 answer; `errors` are ticks whose request failed
    for good (`errors_by_cause`: `http_<status>`, the httpx exception name once
    retries ran out, or `cancelled`). Either one makes the exit code 1.
    """

    sent: int
    acknowledged: int
    accepted: int
    duplicates: int
    rejected: int
    errors: int
    errors_by_cause: dict[str, int]
    requests: int
    attempts: int
    retries: int
    behind: int
    missed: int
    max_lag_ms: float
    elapsed_s: float
    achieved_tps: float
    ack_latency_p50_ms: float
    ack_latency_p95_ms: float
    ack_latency_p99_ms: float
    ack_latency_max_ms: float
    tps_target: float
    batch: int
    max_inflight: int
    connections: int
    symbols: list[str]
    seed: int
    target_url: str
    interrupted: bool
    trade_tps_target: float = 0.0  # 0: the trade simulation was off
    trades: dict[str, int] = field(default_factory=dict)  # TradeStats.trades()
    trade_events: dict[str, dict[str, Any]] = field(default_factory=dict)  # by kind: TradeStats.by_kind()

    @property
    def ok(self) -> bool:
        events_ok = all(k["errors"] == 0 and k["rejected"] == 0 for k in self.trade_events.values())
        return self.errors == 0 and self.rejected == 0 and events_ok

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FeederStats:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: int = 0
    requests: int = 0
    attempts: int = 0
    retries: int = 0
    behind: int = 0
    missed: int = 0  # ticks due within --duration that the scheduler never got to
    max_lag_s: float = 0.0
    errors_by_cause: Counter[str] = field(default_factory=Counter)
    total: HdrHistogram = field(default_factory=new_histogram)
    window: HdrHistogram = field(default_factory=new_histogram)  # since the last progress line
    _window_sent: int = 0
    _window_started: float = field(default_factory=time.monotonic)

    @property
    def acknowledged(self) -> int:
        return self.accepted + self.duplicates

    def record_ack(self, *, accepted: int, duplicates: int, rejected: int, latency_s: float) -> None:
        self.accepted += accepted
        self.duplicates += duplicates
        self.rejected += rejected
        acked = accepted + duplicates
        if acked:
            value = min(max(int(latency_s * 1_000_000), LATENCY_MIN_US), LATENCY_MAX_US)
            self.total.record_value(value, acked)
            self.window.record_value(value, acked)

    def record_error(self, cause: str, ticks: int) -> None:
        self.errors += ticks
        self.errors_by_cause[cause] += ticks

    def record_lag(self, lag_s: float) -> None:
        self.max_lag_s = max(self.max_lag_s, lag_s)

    def progress(self, now: float | None = None) -> dict[str, Any]:
        """Counters so far plus rate and latency over the window since the previous call."""
        now = time.monotonic() if now is None else now
        span = max(now - self._window_started, 1e-9)
        line: dict[str, Any] = {
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "errors": self.errors,
            "retries": self.retries,
            "behind": self.behind,
            "rate": round((self.sent - self._window_sent) / span, 1),
            **percentiles_ms(self.window),
        }
        self.window.reset()
        self._window_sent = self.sent
        self._window_started = now
        return line

    def summary(
        self,
        *,
        elapsed_s: float,
        tps_target: float,
        batch: int,
        max_inflight: int,
        connections: int,
        symbols: list[str],
        seed: int,
        target_url: str,
        interrupted: bool,
        trades: TradeStats | None = None,
        trade_tps_target: float = 0.0,
    ) -> Summary:
        lat = percentiles_ms(self.total)
        return Summary(
            sent=self.sent,
            acknowledged=self.acknowledged,
            accepted=self.accepted,
            duplicates=self.duplicates,
            rejected=self.rejected,
            errors=self.errors,
            errors_by_cause=dict(self.errors_by_cause),
            requests=self.requests,
            attempts=self.attempts,
            retries=self.retries,
            behind=self.behind,
            missed=self.missed,
            max_lag_ms=round(self.max_lag_s * 1000.0, 3),
            elapsed_s=round(elapsed_s, 3),
            achieved_tps=round(self.acknowledged / elapsed_s, 1) if elapsed_s > 0 else 0.0,
            ack_latency_p50_ms=lat["p50_ms"],
            ack_latency_p95_ms=lat["p95_ms"],
            ack_latency_p99_ms=lat["p99_ms"],
            ack_latency_max_ms=lat["max_ms"],
            tps_target=tps_target,
            batch=batch,
            max_inflight=max_inflight,
            connections=connections,
            symbols=symbols,
            seed=seed,
            target_url=target_url,
            interrupted=interrupted,
            trade_tps_target=trade_tps_target,
            trades=trades.trades() if trades else {},
            trade_events=trades.by_kind() if trades else {},
        )


@dataclass
class TradeStats:
    """The trade simulation's counters: its trades (`counters`, kept by the simulator) and its requests per kind."""

    counters: TradeCounters = field(default_factory=TradeCounters)
    events: dict[str, FeederStats] = field(default_factory=lambda: {k: FeederStats() for k in EVENT_KINDS})
    behind: int = 0  # requests that waited for a free in-flight slot

    def trades(self) -> dict[str, int]:
        c = self.counters
        return {
            "started": c.started,
            "completed": c.completed,
            "failed": c.failed,
            "stuck": c.stuck,
            "errored": c.errored,
            "stopped_after_error": c.stopped_after_error,
            "in_flight": c.in_flight,  # started, not finished when the run ended
            "behind": self.behind,
        }

    def by_kind(self) -> dict[str, dict[str, Any]]:
        out = {}
        for kind, s in self.events.items():
            lat = percentiles_ms(s.total)
            out[kind] = {
                "sent": s.sent,
                "acknowledged": s.acknowledged,
                "accepted": s.accepted,
                "duplicates": s.duplicates,
                "rejected": s.rejected,
                "errors": s.errors,
                "errors_by_cause": dict(s.errors_by_cause),
                "requests": s.requests,
                "attempts": s.attempts,
                "retries": s.retries,
                "ack_latency_p50_ms": lat["p50_ms"],
                "ack_latency_p99_ms": lat["p99_ms"],
            }
        return out

    def progress(self) -> dict[str, Any]:
        c = self.counters
        return {
            "trades_started": c.started,
            "trades_completed": c.completed,
            "trades_failed": c.failed,
            "trades_stuck": c.stuck,
            "trades_errored": c.errored,
            "trade_events_sent": sum(s.sent for s in self.events.values()),
            "trade_events_acked": sum(s.acknowledged for s in self.events.values()),
            "trade_events_errors": sum(s.errors + s.rejected for s in self.events.values()),
        }


def status_line(progress: dict[str, Any]) -> str:
    """One human line for a terminal."""
    line = (
        f"sent {progress['sent']}  acked {progress['acknowledged']}  errors {progress['errors']}  "
        f"retries {progress['retries']}  behind {progress['behind']}  {progress['rate']:.0f}/s  "
        f"p50 {progress['p50_ms']:.1f}ms p95 {progress['p95_ms']:.1f}ms p99 {progress['p99_ms']:.1f}ms"
    )
    if "trades_started" in progress:
        line += (
            f"  | trades {progress['trades_started']} done {progress['trades_completed']} "
            f"failed {progress['trades_failed']} stuck {progress['trades_stuck']}  "
            f"events {progress['trade_events_acked']}/{progress['trade_events_sent']} "
            f"errors {progress['trade_events_errors']}"
        )
    return line
