"""The open-loop scheduler: tick i is due at t0 + i / TPS, however slow the answers are.

Each request runs as its own task, at most `max_inflight` at once (of those,
at most `connections` are on the wire; the rest wait for a connection or sit
in a retry backoff). When that bound is hit the scheduler waits for a slot and
counts the request as `behind`; the ticks it could not send on time keep their
schedule, so their ack latency (measured from when they were due) shows the
stall instead of hiding it. `--duration` is wall-clock time: ticks that fell due but could not
be generated before it ran out (the feeder itself too slow) are `missed`.

Alongside, with TRADE_TPS > 0, the trade simulation (`trade_feed.py`) posts
trade-pipeline events as they fall due, sharing the in-flight slots and the
HTTP connections.

A run ends when `--count` ticks were sent, `--duration` elapsed, or on
SIGINT/SIGTERM; the trade simulation ends with it. Then scheduling stops and
in-flight requests get a grace period to finish (long enough for their
retries at a normal end, a few seconds after a signal); a second signal
cancels them at once. Cancelled requests count as errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import IO, Any

import httpx
import orjson

from services.common.kinds import TICK
from services.common.logging import get_logger
from services.common.settings import Settings
from services.feeder import metrics
from services.feeder import pipeline as p
from services.feeder.defaults import (
    CONNECT_TIMEOUT_S,
    MAX_SLEEP_S,
    PROGRESS_INTERVAL_S,
    REQUEST_TIMEOUT_S,
    SIGNAL_DRAIN_S,
)
from services.feeder.sender import RetryPolicy, Sender
from services.feeder.settings import FeederSettings
from services.feeder.stats import FeederStats, Summary, TradeStats, status_line
from services.feeder.trade_feed import TradeFeed
from services.feeder.trades import TradeSimulator
from services.feeder.walk import TickGenerator

log = get_logger(__name__)


class Stopper:
    """Stop requests: the first one ends scheduling, a second one cancels in-flight sends."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.force = asyncio.Event()
        self._installed: list[signal.Signals] = []

    def request_stop(self) -> None:
        if self.stop.is_set():
            self.force.set()
        self.stop.set()

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every platform
                loop.add_signal_handler(sig, self._on_signal, sig)
                self._installed.append(sig)

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    def _on_signal(self, sig: signal.Signals) -> None:
        log.warning("feeder.signal", signal=sig.name, action="cancel in-flight" if self.stop.is_set() else "stop")
        self.request_stop()


def epoch_ms() -> int:
    return time.time_ns() // 1_000_000


class Progress:
    """Once per interval: a `feeder.progress` log line and, on a terminal, a status line on stderr."""

    def __init__(self, stats: FeederStats, interval_s: float, *, quiet: bool, trades: TradeStats | None = None) -> None:
        self.stats = stats
        self.trades = trades
        self.interval_s = interval_s
        self.quiet = quiet
        self.tty = not quiet and sys.stderr.isatty()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            line = self.stats.progress()
            if self.trades is not None:
                line.update(self.trades.progress())
            metrics.update(line, self.trades.by_kind() if self.trades is not None else None)
            if self.quiet:
                continue
            self._clear()  # when stdout is the same terminal, the log line must not land on the status line
            log.info("feeder.progress", **line)
            if self.tty:
                sys.stderr.write(status_line(line))
                sys.stderr.flush()

    def close(self) -> None:
        self._clear()

    def _clear(self) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


class Feeder:
    """One run: generates ticks on schedule and hands them to the sender as tasks."""

    def __init__(self, plan: FeederSettings, sender: Sender, acked: IO[str] | None) -> None:
        self.plan = plan
        self.sender = sender
        self.stats = sender.stats
        self.acked = acked
        self.generator = TickGenerator(
            plan.symbol_list, seed=plan.seed, source=plan.source, volatility=plan.volatilities
        )
        self.slots = asyncio.Semaphore(plan.max_inflight)
        self.tasks: set[asyncio.Task[None]] = set()

    async def schedule(self, t0: float, stop: asyncio.Event) -> None:
        period = 1.0 / self.plan.tps
        duration = self.plan.duration
        end = t0 + duration if duration else math.inf
        count = self.plan.count
        i = 0
        pending: list[dict[str, Any]] = []
        due = t0
        # A tick's ts is when it was due, not when it was generated: latencies measured from ts
        # downstream (to the views, to Postgres) then include any lag of the feeder itself.
        wall0_ms = epoch_ms() - (time.monotonic() - t0) * 1000.0
        while not stop.is_set() and (count is None or i < count):
            due = t0 + i * period
            now = time.monotonic()
            if due >= end or now >= end:  # --duration is wall-clock time, even when behind schedule
                break
            if due > now:
                await asyncio.sleep(min(due - now, MAX_SLEEP_S))
                continue
            self.stats.record_lag(now - due)
            pending.append(self.generator.next_tick(int(wall0_ms + (due - t0) * 1000.0)))
            i += 1
            if len(pending) >= self.plan.batch:
                await self.dispatch(pending, due)
                pending = []
        if pending:  # a partial last batch: those ticks were generated, so they are sent
            await self.dispatch(pending, due)
        if duration and not stop.is_set():
            due_in_run = math.ceil(duration * self.plan.tps - 1e-9)
            self.stats.missed = max(0, min(due_in_run, count or due_in_run) - i)

    async def dispatch(self, ticks: list[dict[str, Any]], scheduled: float) -> None:
        if self.slots.locked():
            self.stats.behind += 1
        await self.slots.acquire()
        self.stats.sent += len(ticks)
        self.stats.requests += 1
        task = asyncio.create_task(self.send(ticks, scheduled))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        await asyncio.sleep(0)  # let sends run even when the schedule is behind and never sleeps

    async def send(self, ticks: list[dict[str, Any]], scheduled: float) -> None:
        try:
            acked = await self.sender.deliver(ticks, scheduled)
        finally:
            self.slots.release()
        if self.acked is not None:
            self.acked.writelines(t["event_id"] + "\n" for t in acked)

    async def drain(self, stopper: Stopper, timeout_s: float) -> None:
        """Wait for in-flight sends; a stop request shortens the wait, a second one ends it."""
        deadline = time.monotonic() + timeout_s
        while self.tasks and not stopper.force.is_set():
            now = time.monotonic()
            if stopper.stop.is_set():
                deadline = min(deadline, now + SIGNAL_DRAIN_S)
            if now >= deadline:
                break
            await asyncio.wait(set(self.tasks), timeout=min(deadline - now, MAX_SLEEP_S * 4))
        if self.tasks:
            log.warning("feeder.cancelling", in_flight=len(self.tasks))
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)


async def run_schedules(
    feeder: Feeder, trade_feed: TradeFeed | None, t0: float, start_ms: int, stopper: Stopper
) -> None:
    """The tick schedule and, beside it, the trade simulation, which ends when the tick schedule does."""
    if trade_feed is None:
        await feeder.schedule(t0, stopper.stop)
        return
    duration, count = feeder.plan.duration, feeder.plan.count
    end_ms = start_ms + round(duration * 1000) if duration else None
    done = asyncio.Event()
    trades = asyncio.create_task(trade_feed.schedule(t0, done, end_ms))
    try:
        await feeder.schedule(t0, stopper.stop)
        if duration and (count is None or feeder.stats.sent < count):
            # Ended by the duration: the last tick fell due before its end; the trades run all of it.
            remaining = t0 + duration - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopper.stop.wait(), max(remaining, 0.0))
    finally:
        done.set()
        await trades


def natural_drain_s(policy: RetryPolicy) -> float:
    """Long enough for any request still retrying to reach its verdict."""
    return policy.max_total_s + REQUEST_TIMEOUT_S + 1.0


def make_client(settings: Settings, plan: FeederSettings) -> httpx.AsyncClient:
    # The keep-alive pool matches the requests the sender lets through at once: idle connections
    # beyond that only cost httpx time (it checks each one on every request).
    return httpx.AsyncClient(
        base_url=plan.target_url,
        auth=httpx.BasicAuth(settings.INGEST_USERNAME, settings.INGEST_PASSWORD),
        limits=httpx.Limits(max_connections=plan.connections, max_keepalive_connections=plan.connections),
        timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
    )


@contextlib.asynccontextmanager
async def senders(
    settings: Settings, plan: FeederSettings, retry: RetryPolicy
) -> AsyncIterator[Callable[[str, FeederStats], Any]]:
    """`make_sender(kind, stats)` for the run's transport: HTTP posts sharing one client, its connection gate
    and its once-per-cause log; or messages to the Kafka topics through one producer (kafka_sender.py)."""
    if plan.transport == "kafka":
        from services.feeder.kafka_sender import KafkaTransport

        transport = KafkaTransport(settings)
        try:
            yield transport.sender
        finally:
            await transport.close()
        return
    async with make_client(settings, plan) as client:
        gate, logged = asyncio.Semaphore(plan.connections), set[str]()
        yield lambda _kind, stats: Sender(client, stats, retry, gate=gate, logged=logged)


async def run_feeder(
    settings: Settings,
    plan: FeederSettings,
    stopper: Stopper | None = None,
    *,
    retry: RetryPolicy | None = None,
    progress_interval_s: float = PROGRESS_INTERVAL_S,
) -> Summary:
    """Run until count/duration/stop; return (and optionally write) the summary.

    `settings` gives the ingest credentials. Without a `stopper`, SIGINT/SIGTERM stop the run (when called
    on the main thread).
    """
    retry = retry or RetryPolicy()
    trade_config = plan.trades
    own_stopper = stopper is None
    stopper = stopper or Stopper()
    if own_stopper:
        stopper.install()
    log.info(
        "feeder.start",
        target_url=plan.target_url,
        tps=plan.tps,
        symbols=plan.symbol_list,
        batch=plan.batch,
        seed=plan.seed,
        count=plan.count,
        duration_s=plan.duration,
        max_inflight=plan.max_inflight,
        connections=plan.connections,
        trade_tps=plan.trade_tps,
        fail_rate=plan.fail_rate,
        error_rate=plan.error_rate,
        stuck_rate=plan.stuck_rate,
    )
    if {"INGEST_USERNAME", "INGEST_PASSWORD"} & set(settings.demo_secrets_in_use):
        log.warning("feeder.demo_credentials", note="INGEST_USERNAME/INGEST_PASSWORD are the demo defaults")

    stats = FeederStats()
    trade_stats = TradeStats() if plan.trade_tps > 0 else None
    progress = Progress(stats, progress_interval_s, quiet=plan.quiet, trades=trade_stats)
    t0 = time.monotonic()
    start_ms = epoch_ms()
    try:
        with contextlib.ExitStack() as files:
            acked = files.enter_context(plan.acked_ids.open("w")) if plan.acked_ids else None
            acked_events = files.enter_context(plan.acked_events.open("w")) if plan.acked_events else None
            async with senders(settings, plan, retry) as make_sender:
                feeder = Feeder(plan, make_sender(TICK.name, stats), acked)
                trade_feed = None
                if trade_stats is not None:
                    simulator = TradeSimulator(trade_config, seed=plan.seed, start_ms=start_ms)
                    trade_stats.counters = simulator.counters
                    by_kind = {kind: make_sender(kind, trade_stats.events[kind]) for kind in p.EVENT_KINDS}
                    trade_feed = TradeFeed(simulator, by_kind, trade_stats, feeder.slots, feeder.tasks, acked_events)
                progress_task = asyncio.create_task(progress.run())
                try:
                    await run_schedules(feeder, trade_feed, t0, start_ms, stopper)
                    await feeder.drain(stopper, natural_drain_s(retry))
                finally:
                    progress_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await progress_task
                    progress.close()
    finally:
        if own_stopper:
            stopper.remove()

    summary = stats.summary(
        elapsed_s=time.monotonic() - t0, interrupted=stopper.stop.is_set(), trades=trade_stats, **plan.summary_figures()
    )
    log.info("feeder.summary", **summary.as_dict())
    if summary.missed or summary.behind:
        log.warning(
            "feeder.fell_behind",
            missed=summary.missed,
            behind=summary.behind,
            max_lag_ms=summary.max_lag_ms,
            hint="the target rate was not reached: raise --batch, --connections or FEEDER_MAX_INFLIGHT",
        )
    if plan.summary_json:
        plan.summary_json.write_bytes(orjson.dumps(summary.as_dict(), option=orjson.OPT_INDENT_2))
    return summary
