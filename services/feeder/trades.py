"""Seeded trade-lifecycle simulation: a discrete-event model of the pipeline (pure, no I/O).

Trade n starts at start + n / TRADE_TPS. When it starts, everything about it
is drawn from the run's random stream, in trade order: its fate (completes,
fails validation, hits an error at pms-core and goes on or stops there, or
gets stuck at a stage), the latency of each stage (lognormal around the
stage's median), the failure reason or error type. So the mix and each
trade's path depend on the seed only, not on when `advance` is called.

Topics behave like Kafka partitions read by one consumer each: a message gets
the next offset of its partition when it is produced, and a partition is
consumed in order, so a message is consumed at

    max(produced_at + stage latency, when the previous message of that partition was consumed)

(a slow message holds back the ones behind it, which shows as lag). A stuck
trade is consumed and swallowed: the offset moves on, no event follows. The
consumed offset never passes the produced one, so lag = produced - consumed
>= 0 and it counts the messages in flight.

Times are integer epoch milliseconds; every stage takes at least 1 ms, so a
trade's events have strictly increasing `event_time`. `event_id`s and the run
tag in trade ids (`T-<tag>-<n>`) are fresh per run, not drawn from the seed:
two runs with one seed tell the same trades' stories without colliding in
storage. The partition follows the trade_id, as a Kafka producer keyed by it
would place it, so which trades queue behind which (and so the exact event
times) differs between such runs; with the run tag and id factory given
(tests), the whole event sequence is a function of the seed.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from services.feeder import pipeline as p
from services.feeder.walk import new_event_id


@dataclass(frozen=True)
class Latency:
    """A lognormal stage latency: `median_ms` * exp(`spread` * N(0, 1))."""

    median_ms: float
    spread: float = p.DEFAULT_LATENCY_SPREAD

    def draw(self, rng: random.Random) -> int:
        value = self.median_ms * math.exp(self.spread * rng.gauss(0.0, 1.0))
        return min(max(1, round(value)), p.MAX_STAGE_LATENCY_MS)

    @property
    def slow_ms(self) -> float:
        """Past this, the stage logs WARN / PROCESSING_DELAY."""
        return p.SLOW_FACTOR * self.median_ms


def default_latencies(spread: float = p.DEFAULT_LATENCY_SPREAD) -> dict[str, Latency]:
    return {s.service: Latency(s.median_ms, spread) for s in p.CONSUMERS}


def parse_latencies(text: str, spread: float = p.DEFAULT_LATENCY_SPREAD) -> dict[str, Latency]:
    """`analytics=120,pms-core=20:0.8` (stage=median_ms[:spread]) over the defaults.

    A stage is named by its service name, with or without `-service`.
    """
    out = default_latencies(spread)
    names = {s.short_name: s.service for s in p.CONSUMERS} | {s.service: s.service for s in p.CONSUMERS}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        service = names.get(name.strip())
        if not sep or service is None:
            known = ", ".join(s.short_name for s in p.CONSUMERS)
            raise ValueError(
                f"bad stage latency {item!r}: expected <stage>=<median_ms>[:<spread>], stage one of {known}"
            )
        median_text, _, spread_text = value.partition(":")
        try:
            latency = Latency(float(median_text), float(spread_text) if spread_text else spread)
        except ValueError:
            raise ValueError(f"bad stage latency {item!r}: median and spread must be numbers") from None
        if not (latency.median_ms > 0 and math.isfinite(latency.median_ms)):
            raise ValueError(f"bad stage latency {item!r}: the median must be > 0 ms")
        if not (latency.spread >= 0 and math.isfinite(latency.spread)):
            raise ValueError(f"bad stage latency {item!r}: the spread must be >= 0")
        out[service] = latency
    return out


@dataclass(frozen=True)
class TradeConfig:
    tps: float = p.DEFAULT_TRADE_TPS
    fail_rate: float = p.DEFAULT_FAIL_RATE
    error_rate: float = p.DEFAULT_ERROR_RATE
    stuck_rate: float = p.DEFAULT_STUCK_RATE
    partitions: int = p.DEFAULT_PARTITIONS
    metrics_interval_ms: int = round(p.DEFAULT_METRICS_INTERVAL_S * 1000)
    latencies: dict[str, Latency] = field(default_factory=default_latencies)

    def problems(self) -> list[str]:
        out = []
        if not (self.tps >= 0 and math.isfinite(self.tps)):
            out.append(f"TRADE_TPS must be a number >= 0, got {self.tps}")
        for name, rate in (
            ("TRADE_FAIL_RATE", self.fail_rate),
            ("TRADE_ERROR_RATE", self.error_rate),
            ("TRADE_STUCK_RATE", self.stuck_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                out.append(f"{name} must be between 0 and 1, got {rate}")
        if self.fail_rate + self.error_rate + self.stuck_rate > 1.0 + 1e-9:
            out.append("TRADE_FAIL_RATE + TRADE_ERROR_RATE + TRADE_STUCK_RATE must not exceed 1")
        if self.partitions < 1:
            out.append(f"TRADE_PARTITIONS must be at least 1, got {self.partitions}")
        if self.metrics_interval_ms < 1:
            out.append(f"TRADE_METRICS_INTERVAL_S must be > 0, got {self.metrics_interval_ms / 1000}")
        return out


class Fate(Enum):
    COMPLETES = "completes"
    FAILS = "fails"  # at validation: VALIDATION_FAILED + DLQ
    ERROR_CONTINUES = "error_continues"  # error at pms-core, retried, then on to the end
    ERROR_STOPS = "error_stops"  # error at pms-core, nothing after
    STUCK = "stuck"  # swallowed by the consumer of stage `stuck_at`


@dataclass(frozen=True)
class Emitted:
    """One event due at `time_ms`: `kind` is the ingest kind (trade, queue, dlq, error, log)."""

    kind: str
    time_ms: int
    body: dict[str, Any]


@dataclass
class TradeCounters:
    """Trades by what has happened to them so far (counted when the event that shows it is due)."""

    started: int = 0
    completed: int = 0
    failed: int = 0
    stuck: int = 0
    errored: int = 0  # hit an error (and may have gone on)
    stopped_after_error: int = 0
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(p.EVENT_KINDS, 0))  # emitted, by kind

    @property
    def in_flight(self) -> int:
        return self.started - self.completed - self.failed - self.stuck - self.stopped_after_error


@dataclass
class Trade:
    trade_id: str
    partition: int
    fate: Fate
    latencies: list[int]  # by stage index; [0] unused
    stuck_at: int = 0  # stage index whose consumer swallows it (STUCK only)
    reason: str = ""  # FAILS
    error: tuple[str, str] = ("", "")  # ERROR_*: (error_type, error_message)
    retry_ms: int = 0  # ERROR_CONTINUES: backoff + second attempt
    log_info: bool = False
    started_ms: int = 0


def new_run_tag() -> str:
    return uuid.uuid4().hex[:8]


def partition_of(trade_id: str, partitions: int) -> int:
    return zlib.crc32(trade_id.encode()) % partitions


class TradeSimulator:
    """Trades from `start_ms` on; `advance(now_ms)` returns the events due by then, in time order."""

    def __init__(
        self,
        config: TradeConfig,
        *,
        seed: int,
        start_ms: int,
        event_id: Callable[[], str] = new_event_id,
        run_tag: str | None = None,
    ) -> None:
        if config.tps <= 0:
            raise ValueError("the trade simulation needs TRADE_TPS > 0")
        self.config = config
        self.start_ms = start_ms
        self.run_tag = run_tag or new_run_tag()
        self.counters = TradeCounters()
        self._rng = random.Random(f"{seed}:trades")  # its own stream: the tick walks are seeded per symbol
        self._event_id = event_id
        topics = [s.consumes for s in p.CONSUMERS if s.consumes]
        self.produced = {t: [0] * config.partitions for t in topics}
        self.consumed = {t: [0] * config.partitions for t in topics}
        self._free_at = {t: [start_ms] * config.partitions for t in topics}
        self._heap: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._out: list[Emitted] = []
        self._push(start_ms, self._start, 0)
        self._push(start_ms, self._snapshot, 0)

    # --- driving ----------------------------------------------------------------

    def advance(self, now_ms: int) -> list[Emitted]:
        """Run every action due at or before `now_ms`; the events they emitted, oldest first."""
        while self._heap and self._heap[0][0] <= now_ms:
            when, _, action, args = heapq.heappop(self._heap)
            action(when, *args)
        out, self._out = self._out, []
        return out

    def next_due_ms(self) -> int:
        return self._heap[0][0]

    def _push(self, when: int, action: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), action, args))

    # --- actions ----------------------------------------------------------------

    def _start(self, now: int, n: int) -> None:
        self._push(self.start_ms + math.floor((n + 1) * 1000 / self.config.tps), self._start, n + 1)
        trade = self._draw(n, now)
        self.counters.started += 1
        first = p.STAGES[0]
        self._trade_event(now, trade, first, target=first.produces, message=first.message)
        self._produce(now, trade, 1)

    def _draw(self, n: int, now: int) -> Trade:
        """Everything random about trade n, drawn in one go (the same draws whatever its fate)."""
        rng, cfg = self._rng, self.config
        trade_id = f"T-{self.run_tag}-{n}"
        u, stops = rng.random(), rng.random() < p.ERROR_STOP_SHARE
        if u < cfg.fail_rate:
            fate = Fate.FAILS
        elif u < cfg.fail_rate + cfg.error_rate:
            fate = Fate.ERROR_STOPS if stops else Fate.ERROR_CONTINUES
        elif u < cfg.fail_rate + cfg.error_rate + cfg.stuck_rate:
            fate = Fate.STUCK
        else:
            fate = Fate.COMPLETES
        latencies = [0] + [cfg.latencies[s.service].draw(rng) for s in p.CONSUMERS]
        trade = Trade(trade_id, partition_of(trade_id, cfg.partitions), fate, latencies, started_ms=now)
        trade.stuck_at = rng.randint(p.CAPTURE, p.LEADERBOARD)
        trade.reason = rng.choice(p.FAIL_REASONS)
        trade.error = rng.choices(p.PMS_ERRORS, p.PMS_ERROR_WEIGHTS)[0]
        trade.retry_ms = p.RETRY_BACKOFF_MS + cfg.latencies[p.STAGES[p.PMS_CORE].service].draw(rng)
        trade.log_info = rng.random() < p.INFO_LOG_SHARE
        return trade

    def _produce(self, now: int, trade: Trade, stage_index: int) -> None:
        """Write the trade to the topic `stage_index` reads; schedule when that consumer gets to it."""
        stage = p.STAGES[stage_index]
        assert stage.consumes is not None
        topic, part = stage.consumes, trade.partition
        offset = self.produced[topic][part]
        self.produced[topic][part] += 1
        took = trade.latencies[stage_index]
        if stage_index == p.PMS_CORE and trade.fate is Fate.ERROR_CONTINUES:
            self._push(now + took, self._error, trade, False)  # first attempt fails, the retry succeeds
            took += trade.retry_ms
        done = max(now + took, self._free_at[topic][part])
        self._free_at[topic][part] = done
        self._push(done, self._consume, trade, stage_index, offset, now)

    def _consume(self, now: int, trade: Trade, stage_index: int, offset: int, produced_at: int) -> None:
        stage = p.STAGES[stage_index]
        assert stage.consumes is not None
        self.consumed[stage.consumes][trade.partition] += 1
        if trade.fate is Fate.STUCK and trade.stuck_at == stage_index:
            self.counters.stuck += 1
            return
        if trade.fate is Fate.ERROR_STOPS and stage_index == p.PMS_CORE:
            self._error(now, trade, True)
            return
        took = now - produced_at
        latency = self.config.latencies[stage.service]
        if took > latency.slow_ms:
            self._log(
                now,
                stage.service,
                p.WARN,
                p.PROCESSING_DELAY,
                trade.trade_id,
                f"{stage.service} took {took} ms for trade {trade.trade_id} (threshold {latency.slow_ms:g} ms)",
            )
        consumed = (stage.consumes, trade.partition, offset)
        if trade.fate is Fate.FAILS and stage_index == p.VALIDATION:
            self._trade_event(
                now,
                trade,
                stage,
                event_type=p.VALIDATION_FAILED,
                status=p.FAILED,
                target=p.DLQ_TOPIC,
                message=f"Trade rejected: {trade.reason}",
                consumed=consumed,
            )
            self._emit(
                "dlq",
                now,
                trade_id=trade.trade_id,
                service_name=stage.service,
                topic_name=p.DLQ_TOPIC,
                reason=trade.reason,
                event_time=now,
            )
            self.counters.failed += 1
            return
        message = stage.message + (
            " after retry" if trade.fate is Fate.ERROR_CONTINUES and stage_index == p.PMS_CORE else ""
        )
        self._trade_event(now, trade, stage, target=stage.produces, message=message, consumed=consumed)
        if stage_index == p.LEADERBOARD:
            self.counters.completed += 1
            if trade.log_info:
                self._log(
                    now,
                    stage.service,
                    p.INFO,
                    p.TRADE_PROCESSED,
                    trade.trade_id,
                    f"Trade {trade.trade_id} processed end to end in {now - trade.started_ms} ms",
                )
            return
        self._produce(now, trade, stage_index + 1)

    def _error(self, now: int, trade: Trade, stops: bool) -> None:
        service = p.STAGES[p.PMS_CORE].service
        error_type, error_message = trade.error
        self._emit(
            "error",
            now,
            trade_id=trade.trade_id,
            service_name=service,
            error_type=error_type,
            error_message=error_message,
            event_time=now,
        )
        outcome = "giving up" if stops else "retrying"
        self._log(
            now,
            service,
            p.ERROR,
            p.PROCESSING_ERROR,
            trade.trade_id,
            f"{error_type} on trade {trade.trade_id}: {error_message}; {outcome}",
        )
        self.counters.errored += 1
        if stops:
            self.counters.stopped_after_error += 1

    def _snapshot(self, now: int, k: int) -> None:
        self._push(self.start_ms + (k + 1) * self.config.metrics_interval_ms, self._snapshot, k + 1)
        for stage in p.CONSUMERS:
            assert stage.consumes is not None
            topic = stage.consumes
            for part in range(self.config.partitions):
                self._emit(
                    "queue",
                    now,
                    service_name=stage.service,
                    topic_name=topic,
                    partition=part,
                    produced_offset=self.produced[topic][part],
                    consumed_offset=self.consumed[topic][part],
                    snapshot_time=now,
                )

    # --- events -----------------------------------------------------------------

    def _trade_event(
        self,
        now: int,
        trade: Trade,
        stage: p.Stage,
        *,
        target: str | None,
        message: str,
        event_type: str | None = None,
        status: str = p.SUCCESS,
        consumed: tuple[str, int, int] | None = None,  # (topic, partition, offset) of the consumed message
    ) -> None:
        topic_name, partition, offset = consumed or (None, None, None)
        self._emit(
            "trade",
            now,
            trade_id=trade.trade_id,
            service_name=stage.service,
            event_type=event_type or stage.event_type,
            event_status=status,
            source_queue=topic_name,
            target_queue=target,
            topic_name=topic_name,
            partition=partition,
            offset=offset,
            event_time=now,
            message=message,
        )

    def _log(self, now: int, service: str, level: str, category: str, trade_id: str, message: str) -> None:
        self._emit(
            "log",
            now,
            service_name=service,
            log_level=level,
            log_category=category,
            trade_id=trade_id,
            message=message,
            event_time=now,
        )

    def _emit(self, kind: str, now: int, **body: Any) -> None:
        self.counters.events[kind] += 1
        self._out.append(Emitted(kind, now, {"event_id": self._event_id(), **body}))
