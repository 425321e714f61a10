"""The hub's clients, grouped by what they asked for: the same filters and the same `?conflate=` interval.

A group matches each event once for all its clients, and conflates once for
all its live ones: the dashboard's streams (one set of types, 250 ms) are one
group however many browsers hold them, so an event costs one match, one
conflation step and then one socket write per client (`direct.py`).

A client joins its group on the queue path (the hub `put_nowait`s each event
into its queue; its stream replays, conflates on its own and sends). Once its
stream has sent everything (queue empty, nothing of its own pending) it goes
live: from then on the group's output is written to its socket. What the
group still holds from before is older than what the client was last sent,
so it is skipped (`Client.after`), and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.realtime_gateway.conflate import Conflator
from services.realtime_gateway.direct import Writer, chunk
from services.realtime_gateway.frames import Event, Filters

PER_TICK = "tick.received"  # published one by one only while some client names it (demand.py)


class Client:
    """One SSE connection: its filters, bounded queue of events and, once live, the socket the hub writes to.

    A `str` in the queue is the reason the hub stopped feeding it (`SLOW`, `SHUTDOWN`).
    """

    __slots__ = ("filters", "interval", "queue", "peer", "start_id", "per_tick", "writer", "written", "after")

    def __init__(self, filters: Filters, interval: float | None, buffer: int, peer: str, start_id: str | None) -> None:
        self.filters = filters
        self.interval = interval  # ?conflate= seconds, None for every event
        self.queue: asyncio.Queue[Event | str] = asyncio.Queue(maxsize=max(1, buffer))
        self.peer = peer
        self.start_id = start_id  # the hub's position when the client joined: it is owed what follows
        self.per_tick = filters.types is not None and PER_TICK in filters.types
        self.writer: Writer | None = None  # set by `go_live`: the hub writes this client's frames itself
        self.written: str | None = None  # id of the last event sent to it, once the hub writes
        self.after: tuple[int, int] = (-1, -1)  # live: events at or below this were sent by its stream already

    @property
    def key(self) -> tuple[Filters, float | None]:
        return self.filters, self.interval

    def go_live(self, writer: Writer, written: str | None, after: tuple[int, int]) -> None:
        """From now on the hub writes this client's events to its socket. Only with its queue empty: the
        events queued before are sent by its stream first, so the order holds."""
        assert self.queue.empty(), "events still queued would go out after newer ones"
        self.writer, self.written, self.after = writer, written, after


@dataclass(eq=False)
class Group:
    """The clients of one (filters, interval): the queued ones and the live ones, and the live ones' conflator."""

    filters: Filters
    interval: float | None
    queued: set[Client] = field(default_factory=set)
    live: set[Client] = field(default_factory=set)
    conflator: Conflator | None = None  # for the live clients; the queued ones conflate in their own streams
    timer: asyncio.TimerHandle | None = None  # the conflator's window end

    def __post_init__(self) -> None:
        if self.interval is not None:
            self.conflator = Conflator(self.interval)

    def __len__(self) -> int:
        return len(self.queued) + len(self.live)

    def discard(self, client: Client) -> bool:
        """Take a client out; True if it was in."""
        if client in self.live:
            self.live.discard(client)
        elif client in self.queued:
            self.queued.discard(client)
        else:
            return False
        if not self.live:
            self.stop_timer()
            if self.interval is not None:
                self.conflator = Conflator(self.interval)  # nobody got its pending events: start afresh
        return True

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def write(clients: set[Client], events: list[Event], slow: list[Client]) -> int:
    """Write `events` (in id order) to each live client's socket; the frames written. Slow clients go to `slow`."""
    if not events:
        return 0
    chunks = [chunk(event.frame) for event in events]
    whole = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    written = 0
    for client in clients:
        writer = client.writer
        assert writer is not None, "only live clients are written to"
        state = writer.state()
        if state == "closed":
            continue  # the client went away: its stream ends and unsubscribes it
        if state == "slow":
            slow.append(client)
            continue
        if client.after < events[0].key:
            fresh = list(range(len(events)))
            data = whole
        else:  # some of these were sent by its stream before it went live (a replay overlapping live events)
            fresh = [i for i, event in enumerate(events) if event.key > client.after]
            data = b"".join(chunks[i] for i in fresh)
        if not fresh:
            continue
        try:
            writer.transport.write(data)
        except (OSError, RuntimeError):  # closed under us: its stream ends and unsubscribes it; the others go on
            continue
        client.written = events[fresh[-1]].id
        written += len(fresh)
    return written
