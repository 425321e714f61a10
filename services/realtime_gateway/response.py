"""The SSE response of `/stream`: sse-starlette's, with the send timeout kept by a watchdog.

sse-starlette bounds every send with its own cancel scope (`send_timeout`):
a timer set and cancelled per frame per client. At 1,000 clients that was
the gateway's largest cost after the socket writes themselves (py-spy;
`python -m bench.fanout`: 24k deliveries/s at 100% of a core and p99 5 s,
against 29.7k/s and p99 0.26 s without it). Here a send only notes when it
started; `Watchdog` checks every client each quarter of SSE_SEND_TIMEOUT_S
(every CHECK_EVERY_S at the most often) and cancels the stream of one whose
send has been stuck longer than the timeout (a client that stopped reading),
which ends its response and closes the socket: within 1.25 timeouts.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from sse_starlette import EventSourceResponse
from starlette.types import Message, Send

from services.common.logging import get_logger
from services.realtime_gateway import metrics
from services.realtime_gateway.defaults import CHECK_EVERY_S

log = get_logger(__name__)


@dataclass(eq=False)  # hashed by identity: kept in the watchdog's set
class SendClock:
    """When the current send of one stream started (None: not sending) and the task running the stream."""

    peer: str
    since: float | None = None
    task: asyncio.Task[object] | None = field(default=None, repr=False)


class StreamResponse(EventSourceResponse):
    def __init__(self, *args: object, clock: SendClock, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.clock = clock

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        self.clock.task = asyncio.current_task()  # type: ignore[assignment]  # the stream's, or the pinger's
        self.clock.since = time.monotonic()
        try:
            await send(message)
        finally:
            self.clock.since = None


class Watchdog:
    """Ends streams whose send has been stuck too long."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.every_s = max(CHECK_EVERY_S, timeout_s / 4)  # an idle gateway wakes for it 0.4 times a second
        self.clocks: set[SendClock] = set()

    def watch(self, clock: SendClock) -> None:
        self.clocks.add(clock)

    def forget(self, clock: SendClock) -> None:
        self.clocks.discard(clock)

    def check(self, now: float) -> None:
        for clock in list(self.clocks):
            if clock.since is not None and now - clock.since > self.timeout_s and clock.task is not None:
                log.warning("gateway.send_timeout", client=clock.peer, stuck_s=round(now - clock.since, 1))
                metrics.CLIENTS_DROPPED.labels("send_timeout").inc()
                self.clocks.discard(clock)
                clock.task.cancel()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            self.check(time.monotonic())
