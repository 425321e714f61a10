"""The event stream of one client: resume from history, then live, then (maybe) overflow.

With `?conflate=` both the replay and the live events go through the
client's `Conflator`; the loop then also wakes when its pending events are due.

No gap and no duplicate on resume: the client is registered with the hub
*before* the history is read, so every event is either in the history read
or in its queue (or both); live events with an id at or below the last one
the replay covered are skipped.

Once the replay is sent, the queue is empty and nothing of its own
conflation is pending, a stream hands its socket to the hub (`direct.py`,
`groups.py`), which then writes every live event itself (conflated once for
all the clients of its group); the stream only waits for the reason it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Literal

import anyio
from redis.exceptions import RedisError

from services.common.contract import Overflow, Reset
from services.common.logging import get_logger
from services.common.realtime import parse_id
from services.realtime_gateway import metrics
from services.realtime_gateway.conflate import Conflator
from services.realtime_gateway.defaults import MAX_CHUNK
from services.realtime_gateway.direct import Writer
from services.realtime_gateway.frames import CONNECTED, Event, Filters, control
from services.realtime_gateway.hub import SHUTDOWN, SLOW, Client, Hub

log = get_logger(__name__)


async def client_stream(
    hub: Hub,
    filters: Filters,
    last_event_id: str | None,
    peer: str,
    shutdown: anyio.Event,
    conflate: float | None = None,
    writer: Callable[[], Writer | None] | None = None,
) -> AsyncIterator[bytes]:
    """The frames of one client; `shutdown` (set by sse-starlette when the server stops) ends it cleanly.

    `conflate`: seconds; each (type, symbol) then gets at most one event per interval, the newest.
    `writer`: the client's socket for the hub to write to once live (None where the server allows none).
    """
    client = hub.subscribe(filters, peer, conflate)  # first: whatever is published from now on is queued for us
    metrics.CLIENTS.inc()
    watcher = asyncio.create_task(_close_on(shutdown, hub, client))
    conflator = Conflator(conflate) if conflate else None
    delivered = last_event_id or client.start_id  # where this client should resume from
    log.info("gateway.client_connected", client=peer, last_event_id=last_event_id, conflate=conflate)
    try:
        yield CONNECTED
        seen = (-1, -1)  # live events at or below this were covered by the replay
        live = False  # the hub writes to the socket (go_live)
        if last_event_id is not None:
            seen = parse_id(last_event_id)
            try:
                oldest = await hub.history.missed(last_event_id)
                if oldest is not None:
                    yield _reset(last_event_id, oldest, "history_trimmed")
                replay = hub.history.after(last_event_id)
                async for event in replay:
                    seen = event.key
                    if filters.match(event):
                        metrics.REPLAYED.labels("resume").inc()
                        for ready in _offer(conflator, event):
                            yield ready.frame
                            delivered = ready.id
                            metrics.FRAMES_DELIVERED.inc()
                if not replay.complete:
                    yield _reset(delivered, None, "too_far_behind")
            except RedisError as exc:  # the client reconnects with its Last-Event-ID once Redis is back
                log.warning("gateway.replay_failed", client=peer, error=f"{type(exc).__name__}: {exc}")
                return
        while True:
            if writer is not None and client.queue.empty() and (conflator is None or conflator.due() is None):
                # Everything owed is sent, and no await since the queue was seen empty: nothing slips in between.
                direct, writer = writer(), None  # asked once: the answer does not change for this connection
                if direct is not None:
                    after = max(seen, parse_id(delivered)) if delivered else seen
                    hub.go_live(client, direct, delivered, after)
                    live = client.writer is not None  # not if it is being dropped
            # Everything already queued goes out as one chunk: one ASGI send and one socket write
            # for the lot, so a client that fell behind catches up at a fraction of the cost per event.
            frames: list[bytes] = []
            ended: str | None = None
            for item in await _next_batch(client.queue, conflator):
                if item is None:  # the conflator's pending events are due
                    ready_events = conflator.flush(anyio.current_time()) if conflator else []
                elif isinstance(item, str):  # the hub stopped feeding us
                    ended = item
                    break
                elif item.key <= seen:
                    continue
                else:
                    ready_events = _offer(conflator, item)
                for ready in ready_events:
                    frames.append(ready.frame)
                    delivered = ready.id
            if frames:
                yield frames[0] if len(frames) == 1 else b"".join(frames)
                metrics.FRAMES_DELIVERED.inc(len(frames))
            if ended is not None:
                if live:
                    delivered = client.written  # the hub wrote the last ones
                if ended == SLOW:
                    yield _overflow(hub.buffer, delivered)
                return
    finally:
        watcher.cancel()
        hub.unsubscribe(client)
        metrics.CLIENTS.dec()
        conflated = conflator.conflated if conflator else None
        log.info("gateway.client_disconnected", client=peer, last_event_id=delivered, conflated=conflated)


def _offer(conflator: Conflator | None, event: Event) -> list[Event]:
    """What to send for one event: itself, or what the conflator lets out now."""
    return [event] if conflator is None else conflator.offer(event, anyio.current_time())


async def _next_batch(queue: asyncio.Queue[Event | str], conflator: Conflator | None) -> list[Event | str | None]:
    """The next item (as `_next`) and whatever else is queued behind it, up to `MAX_CHUNK` items."""
    batch = [await _next(queue, conflator)]
    while batch[-1] is not None and not isinstance(batch[-1], str) and len(batch) < MAX_CHUNK and not queue.empty():
        batch.append(queue.get_nowait())
    return batch


async def _next(queue: asyncio.Queue[Event | str], conflator: Conflator | None) -> Event | str | None:
    """The next queued item; None if the conflator's pending events fall due first.

    A queued item comes first even then: offering it sends the pending events too.
    """
    due = conflator.due() if conflator else None
    if due is None or not queue.empty():
        return await queue.get()
    with anyio.CancelScope(deadline=due):  # a cancelled get() leaves the queue as it was
        return await queue.get()
    return None


async def _close_on(shutdown: anyio.Event, hub: Hub, client: Client) -> None:
    await shutdown.wait()
    hub.close(client, SHUTDOWN)


def _overflow(buffer: int, last_event_id: str | None) -> bytes:
    body: Overflow = {
        "reason": "slow_client",
        "detail": f"more than {buffer} events were waiting for this client; reconnect with Last-Event-ID to resume",
        "last_event_id": last_event_id,
    }
    return control("overflow", body)


def _reset(
    last_event_id: str | None, oldest: str | None, reason: Literal["history_trimmed", "too_far_behind"]
) -> bytes:
    detail = {
        "history_trimmed": "events after last_event_id were trimmed from the history and missed; "
        "reload the current state",
        "too_far_behind": "more events were missed than the history replays at once; reload the current state",
    }[reason]
    body: Reset = {"reason": reason, "detail": detail, "last_event_id": last_event_id, "oldest_event_id": oldest}
    return control("reset", body)
