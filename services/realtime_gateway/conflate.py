"""Conflation for one client (`GET /stream?conflate=100ms`): the newest event of each key per interval.

A key is (envelope type, symbol). The client has one window at a time, not one
per key: when it is idle, an event goes out at once (leading edge) and opens a
window of `interval`; events arriving during the window wait in `pending`, one
per key, a newer one replacing an older one (counted as conflated); when the
window ends, the pending events go out together, in id order, and open the
next window. So each key gets at most one event per interval, the newest.

One window per client keeps the event ids a client receives increasing:
everything pending is newer than everything sent. A browser's Last-Event-ID
is then a safe place to resume from; with one window per key, a key whose
event was still pending at a disconnect would be skipped by the resume.

Envelopes without a symbol (metrics, alerts) are never conflated: each goes
out at once, after whatever is pending (which keeps ids in order, at the cost
of that batch leaving before its window ends).

Memory is one event per key; the events are the hub's, so frames are never
re-encoded.
"""

from __future__ import annotations

import re

from services.realtime_gateway import metrics
from services.realtime_gateway.defaults import MAX_INTERVAL_S, MIN_INTERVAL_S
from services.realtime_gateway.frames import Event

DURATION = re.compile(r"^(\d{1,9}(?:\.\d{1,6})?)(ms|s)?$")


def parse_interval(text: str) -> float:
    """Seconds of a duration like `100ms`, `1s`, `0.5s` or plain milliseconds (`250`); ValueError if bad."""
    match = DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{text[:64]!r} is not a duration like 100ms, 1s or 250 (milliseconds)")
    number, unit = match.groups()
    seconds = float(number) if unit == "s" else float(number) / 1000
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise ValueError(f"{text.strip()} is not between 10ms and 10s")
    return seconds


class Conflator:
    """The pending events of one client. Times are monotonic seconds (the event loop's clock).

    Events must be offered in id order (the hub and the history replay both deliver them so).
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.pending: dict[tuple[str, str], Event] = {}  # in id order: a replaced key moves to the end
        self.window_end = float("-inf")  # idle once this has passed
        self.conflated = 0

    def due(self) -> float | None:
        """When the pending events are to be sent, or None if nothing is pending."""
        return self.window_end if self.pending else None

    def offer(self, event: Event, now: float) -> list[Event]:
        """What to send now for `event`, oldest first (often nothing: it waits for the window's end)."""
        if event.symbol is None:
            return [*self._drain(now), event]
        key = (event.type, event.symbol)
        if self.pending.pop(key, None) is not None:
            self.conflated += 1
            metrics.CONFLATED.inc()
        self.pending[key] = event
        return self.flush(now)

    def flush(self, now: float) -> list[Event]:
        """The pending events, oldest first, if the window has ended."""
        return self._drain(now) if now >= self.window_end else []

    def _drain(self, now: float) -> list[Event]:
        batch = list(self.pending.values())
        if batch:  # what was just sent waits a whole interval before its next update
            self.pending.clear()
            self.window_end = now + self.interval
        return batch
