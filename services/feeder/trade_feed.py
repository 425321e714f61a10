"""Trade-pipeline events posted on schedule: the simulator's events leave when their event_time comes.

Open loop, like ticks: the simulator's clock is wall-clock time since the
start of the run, and a slow API never slows it down. The loop sleeps until
the next event is due plus a short linger, then posts everything due by then,
one array per event kind (`EVENT_PATHS`), oldest first, at most
`MAX_EVENTS_PER_REQUEST` per request. Requests share the tick feed's in-flight
slots, HTTP gate and retry policy; each kind counts in its own `FeederStats`.

The simulation stops with the run (`done`): events due by then are sent (with
`--duration`, those due before its end), later ones are never generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from typing import IO, Any

from services.feeder.defaults import EVENT_LINGER_S, MAX_EVENTS_PER_REQUEST
from services.feeder.sender import EVENT_PATHS, Sender
from services.feeder.stats import TradeStats
from services.feeder.trades import Emitted, TradeSimulator


class TradeFeed:
    def __init__(
        self,
        simulator: TradeSimulator,
        senders: dict[str, Sender],
        stats: TradeStats,
        slots: asyncio.Semaphore,
        tasks: set[asyncio.Task[None]],
        acked: IO[str] | None,
    ) -> None:
        self.simulator = simulator
        self.senders = senders
        self.stats = stats
        self.slots = slots
        self.tasks = tasks
        self.acked = acked

    def due_at(self, t0: float, time_ms: int) -> float:
        """The monotonic time an event is due at (the simulator starts at `t0`)."""
        return t0 + (time_ms - self.simulator.start_ms) / 1000.0

    async def schedule(self, t0: float, done: asyncio.Event, end_ms: int | None = None) -> None:
        """Post events as they fall due until `done` is set; `end_ms` (exclusive) bounds their times."""
        sim = self.simulator
        while True:
            finished = done.is_set()
            now_ms = sim.start_ms + int((time.monotonic() - t0) * 1000)
            if end_ms is not None:
                now_ms = min(now_ms, end_ms - 1)
            await self.dispatch(sim.advance(now_ms), t0)
            if finished:
                return
            wait_s = max(0.0, self.due_at(t0, sim.next_due_ms()) - time.monotonic()) + EVENT_LINGER_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), wait_s)

    async def dispatch(self, events: list[Emitted], t0: float) -> None:
        by_kind: dict[str, list[Emitted]] = defaultdict(list)
        for event in events:
            by_kind[event.kind].append(event)
        for kind, items in by_kind.items():
            for i in range(0, len(items), MAX_EVENTS_PER_REQUEST):
                chunk = items[i : i + MAX_EVENTS_PER_REQUEST]
                await self._start_send(kind, [e.body for e in chunk], self.due_at(t0, chunk[0].time_ms))

    async def _start_send(self, kind: str, bodies: list[dict[str, Any]], scheduled: float) -> None:
        if self.slots.locked():
            self.stats.behind += 1
        await self.slots.acquire()
        stats = self.senders[kind].stats
        stats.sent += len(bodies)
        stats.requests += 1
        task = asyncio.create_task(self._send(kind, bodies, scheduled))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, kind: str, bodies: list[dict[str, Any]], scheduled: float) -> None:
        try:
            acked = await self.senders[kind].deliver(bodies, scheduled, EVENT_PATHS[kind])
        finally:
            self.slots.release()
        if self.acked is not None:
            self.acked.writelines(f"{kind} {b['event_id']}\n" for b in acked)
