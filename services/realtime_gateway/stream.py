"""The event stream of one client: resume from history, then live, then (maybe) overflow.

No gap and no duplicate on resume: the client is registered with the hub
*before* the history is read, so every event is either in the history read
or in its queue (or both); live events with an id at or below the last one
the replay covered are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
from redis.exceptions import RedisError

from services.common.logging import get_logger
from services.common.realtime import parse_id
from services.realtime_gateway import metrics
from services.realtime_gateway.frames import CONNECTED, Filters, control
from services.realtime_gateway.hub import SHUTDOWN, SLOW, Client, Hub

log = get_logger(__name__)


async def client_stream(
    hub: Hub, filters: Filters, last_event_id: str | None, peer: str, shutdown: anyio.Event
) -> AsyncIterator[bytes]:
    """The frames of one client; `shutdown` (set by sse-starlette when the server stops) ends it cleanly."""
    client = hub.subscribe(filters, peer)  # first: whatever is published from now on is queued for us
    metrics.CLIENTS.inc()
    watcher = asyncio.create_task(_close_on(shutdown, hub, client))
    delivered = last_event_id or client.start_id  # where this client should resume from
    log.info("gateway.client_connected", client=peer, last_event_id=last_event_id)
    try:
        yield CONNECTED
        seen = (-1, -1)  # live events at or below this were covered by the replay
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
                        yield event.frame
                        delivered = event.id
                        metrics.FRAMES_DELIVERED.inc()
                        metrics.REPLAYED.labels("resume").inc()
                if not replay.complete:
                    yield _reset(delivered, None, "too_far_behind")
            except RedisError as exc:  # the client reconnects with its Last-Event-ID once Redis is back
                log.warning("gateway.replay_failed", client=peer, error=f"{type(exc).__name__}: {exc}")
                return
        while True:
            item = await client.queue.get()
            if isinstance(item, str):  # the hub stopped feeding us
                if item == SLOW:
                    yield _overflow(hub.buffer, delivered)
                return
            if item.key <= seen:
                continue
            yield item.frame
            delivered = item.id
            metrics.FRAMES_DELIVERED.inc()
    finally:
        watcher.cancel()
        hub.unsubscribe(client)
        metrics.CLIENTS.dec()
        log.info("gateway.client_disconnected", client=peer, last_event_id=delivered)


async def _close_on(shutdown: anyio.Event, hub: Hub, client: Client) -> None:
    await shutdown.wait()
    hub.close(client, SHUTDOWN)


def _overflow(buffer: int, last_event_id: str | None) -> bytes:
    return control(
        "overflow",
        {
            "reason": "slow_client",
            "detail": f"more than {buffer} events were waiting for this client; reconnect with Last-Event-ID to resume",
            "last_event_id": last_event_id,
        },
    )


def _reset(last_event_id: str | None, oldest: str | None, reason: str) -> bytes:
    detail = {
        "history_trimmed": "events after last_event_id were trimmed from the history and missed; "
        "reload the current state",
        "too_far_behind": "more events were missed than the history replays at once; reload the current state",
    }[reason]
    return control(
        "reset", {"reason": reason, "detail": detail, "last_event_id": last_event_id, "oldest_event_id": oldest}
    )
