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
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hdrh.histogram import HdrHistogram

from services.feeder.defaults import LATENCY_DIGITS, LATENCY_MAX_US, LATENCY_MIN_US
from services.feeder.pipeline import EVENT_KINDS
from services.feeder.trades import TradeCounters


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


class Summary:
    """The end-of-run report: `as_dict()` is what `--summary-json` writes; each key is an attribute too.

    Built from the stats objects (`FeederStats.summary`): the tick counters (`Counts`), the run's
    `behind`/`missed`/`max_lag_ms`, `elapsed_s`, `achieved_tps`, `ack_latency_{p50,p95,p99,max}_ms`,
    the settings it ran with (`FeederSettings.summary_figures`), `interrupted`, and the trade
    simulation's `trades` (`TradeStats.trades()`) and `trade_events` by kind (`TradeStats.by_kind()`).

    acknowledged = accepted + duplicates. `rejected` are ticks the API refused
    item by item inside a 200 answer; `errors` are ticks whose request failed
    for good (`errors_by_cause`: `http_<status>`, the httpx exception name once
    retries ran out, or `cancelled`). Either one makes the exit code 1.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_data"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def ok(self) -> bool:
        events_ok = all(k["errors"] == 0 and k["rejected"] == 0 for k in self.trade_events.values())
        return self.errors == 0 and self.rejected == 0 and events_ok

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def as_dict(self) -> dict[str, Any]:
        return dict(self._data)


@dataclass
class Counts:
    """What became of the items one stream of requests carried (the ticks, or the events of one kind)."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: int = 0
    errors_by_cause: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    attempts: int = 0
    retries: int = 0

    @property
    def acknowledged(self) -> int:
        return self.accepted + self.duplicates

    def counts(self) -> dict[str, Any]:
        """The counters as the summary reports them (`acknowledged` beside `sent`)."""
        out = {f.name: getattr(self, f.name) for f in fields(Counts)}
        out["errors_by_cause"] = dict(self.errors_by_cause)
        return {"sent": out.pop("sent"), "acknowledged": self.acknowledged, **out}


@dataclass
class FeederStats(Counts):
    behind: int = 0
    missed: int = 0  # ticks due within --duration that the scheduler never got to
    max_lag_s: float = 0.0
    total: HdrHistogram = field(default_factory=new_histogram)
    window: HdrHistogram = field(default_factory=new_histogram)  # since the last progress line
    _window_sent: int = 0
    _window_started: float = field(default_factory=time.monotonic)

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
        self, *, elapsed_s: float, interrupted: bool, trades: TradeStats | None = None, **figures: Any
    ) -> Summary:
        """The run's summary; `figures` are the settings it ran with (`FeederSettings.summary_figures()`)."""
        return Summary(
            {
                **self.counts(),
                "behind": self.behind,
                "missed": self.missed,
                "max_lag_ms": round(self.max_lag_s * 1000.0, 3),
                "elapsed_s": round(elapsed_s, 3),
                "achieved_tps": round(self.acknowledged / elapsed_s, 1) if elapsed_s > 0 else 0.0,
                **{f"ack_latency_{k}": v for k, v in percentiles_ms(self.total).items()},
                "trade_tps_target": 0.0,
                **figures,
                "interrupted": interrupted,
                "trades": trades.trades() if trades else {},
                "trade_events": trades.by_kind() if trades else {},
            }
        )


@dataclass
class TradeStats:
    """The trade simulation's counters: its trades (`counters`, kept by the simulator) and its requests per kind."""

    counters: TradeCounters = field(default_factory=TradeCounters)
    events: dict[str, FeederStats] = field(default_factory=lambda: {k: FeederStats() for k in EVENT_KINDS})
    behind: int = 0  # requests that waited for a free in-flight slot

    def trades(self) -> dict[str, int]:
        counts = {k: v for k, v in asdict(self.counters).items() if k != "events"}  # events: emitted, by kind
        # in_flight: started, not finished when the run ended
        return {**counts, "in_flight": self.counters.in_flight, "behind": self.behind}

    def by_kind(self) -> dict[str, dict[str, Any]]:
        out = {}
        for kind, s in self.events.items():
            lat = percentiles_ms(s.total)
            out[kind] = {**s.counts(), "ack_latency_p50_ms": lat["p50_ms"], "ack_latency_p99_ms": lat["p99_ms"]}
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
