"""One Redis subscription per process, fanned out to every connected client.

The hub never waits for a client. It writes each event's chunk to the socket
of every matching live client itself (`direct.py`), and hands it to the
bounded queue of every other one (resuming, conflated, or on a server the
hub cannot write through) with `put_nowait`. A client whose queue is full, or
whose socket holds more than SSE_CLIENT_BUFFER_BYTES unsent, is dropped
(`close(client, SLOW)`): its queue is emptied, the reason becomes its only
item, and it receives no more events. Clients are grouped by their filters,
so each event is matched once per distinct filter, not once per client.

Events go out in id order, each once: the hub remembers the last id it
dispatched. Whenever the subscription is (re)established -- by our own retry
loop or by redis-py's silent reconnect, both of which show up as a new
`subscribe` confirmation -- it replays the history after that id, so nothing
published while it was away is lost, and it skips live messages already replayed.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common.logging import get_logger
from services.common.realtime import parse_id
from services.common.settings import Settings
from services.realtime_gateway import metrics
from services.realtime_gateway.defaults import BACKOFF_MAX_S, BACKOFF_MIN_S, POLL_S
from services.realtime_gateway.direct import Writer, chunk
from services.realtime_gateway.frames import BadEnvelope, Event, Filters, parse
from services.realtime_gateway.history import History

log = get_logger(__name__)
SLOW = "slow"  # close reason: the client's queue was full
SHUTDOWN = "shutdown"  # close reason: the server is stopping
PER_TICK = "tick.received"  # published one by one only while some client names it (demand.py)


class Client:
    """One SSE connection: its filters, bounded queue of events and, once live, the socket the hub writes to.

    A `str` in the queue is the reason the hub stopped feeding it (`SLOW`, `SHUTDOWN`).
    """

    __slots__ = ("filters", "queue", "peer", "start_id", "per_tick", "writer", "written", "seen")

    def __init__(self, filters: Filters, buffer: int, peer: str, start_id: str | None) -> None:
        self.filters = filters
        self.queue: asyncio.Queue[Event | str] = asyncio.Queue(maxsize=max(1, buffer))
        self.peer = peer
        self.start_id = start_id  # the hub's position when the client joined: it is owed what follows
        self.per_tick = filters.types is not None and PER_TICK in filters.types
        self.writer: Writer | None = None  # set by `go_direct`: the hub writes this client's frames itself
        self.written: str | None = None  # id of the last event sent to it, once the hub writes
        self.seen: tuple[int, int] = (-1, -1)  # events at or below this were sent by its stream's replay

    def go_direct(self, writer: Writer, written: str | None, seen: tuple[int, int]) -> None:
        """From now on the hub writes this client's events to its socket. Only with its queue empty: the
        events queued before are sent by its stream first, so the order holds."""
        assert self.queue.empty(), "events still queued would go out after newer ones"
        self.writer, self.written, self.seen = writer, written, seen


class Hub:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.channel = settings.PUBSUB_CHANNEL
        self.buffer = settings.SSE_CLIENT_BUFFER
        self.buffer_bytes = settings.SSE_CLIENT_BUFFER_BYTES
        self.history = History(redis, settings)
        self.groups: dict[Filters, set[Client]] = {}  # clients by their filters: each event is matched once a group
        self.last_id: str | None = None
        self.last_key: tuple[int, int] = (-1, -1)
        self.subscribed = asyncio.Event()
        self._subscriptions = 0
        self.per_tick_clients = 0  # clients that named `tick.received` in ?types=
        self.per_tick_asked = asyncio.Event()  # set when one joins: demand.py tells the API at once

    def subscribe(self, filters: Filters, peer: str = "-") -> Client:
        client = Client(filters, self.buffer, peer, self.last_id)
        self.groups.setdefault(filters, set()).add(client)
        if client.per_tick:
            self.per_tick_clients += 1
            self.per_tick_asked.set()
        return client

    def unsubscribe(self, client: Client) -> None:
        group = self.groups.get(client.filters)
        if group is not None and client in group:
            group.discard(client)
            if not group:
                del self.groups[client.filters]
            self.per_tick_clients -= client.per_tick

    async def run(self) -> None:
        """Subscribe and fan out until cancelled, reconnecting with backoff."""
        backoff = BACKOFF_MIN_S
        while True:
            try:
                await self._listen()  # returns only by raising
            except (RedisError, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            except Exception as exc:
                log.exception("gateway.hub_failed")
                problem = f"{type(exc).__name__}: {exc}"
            if self.subscribed.is_set():  # we were up: the first retry comes quickly
                self.subscribed.clear()
                backoff = BACKOFF_MIN_S
            log.warning("gateway.redis_lost", error=problem, retry_in_s=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _listen(self) -> None:
        if self.last_id is None:
            # Read before subscribing: the first replay then covers the gap up to the subscription.
            self._advance(await self.history.tail())
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            while True:
                message = await pubsub.get_message(timeout=POLL_S)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    await self._on_subscribed()
                elif message["type"] == "message":
                    metrics.EVENTS_RECEIVED.inc()
                    self._on_message(message["data"])
                    await asyncio.sleep(0)  # let clients take the event before the next one
        finally:
            await pubsub.aclose()

    async def _on_subscribed(self) -> None:
        self._subscriptions += 1
        if self._subscriptions > 1:
            metrics.REDIS_RECONNECTS.inc()
        after = self.last_id or "0-0"
        replay = self.history.after(after)
        count = 0
        async for event in replay:
            count += 1
            self.dispatch(event)
            await asyncio.sleep(0)
        metrics.REPLAYED.labels("reconnect").inc(count)
        if not replay.complete:
            log.warning("gateway.replay_truncated", after=after, limit=self.history.limit)
        self.subscribed.set()
        log.info("gateway.subscribed", channel=self.channel, replayed=count, last_id=self.last_id)

    def _on_message(self, raw: bytes) -> None:
        try:
            event = parse(raw)
        except BadEnvelope as exc:
            metrics.BAD_ENVELOPES.inc()
            log.warning("gateway.bad_envelope", error=str(exc), size=len(raw))
            return
        self.dispatch(event)

    def dispatch(self, event: Event) -> None:
        """Hand one event to every matching client; never waits."""
        if event.key <= self.last_key:
            return  # already dispatched (replayed after a reconnect)
        self._advance(event.id)
        slow = []
        data: bytes | None = None  # the event's HTTP chunk, built once for every socket written
        written = 0
        for filters, group in self.groups.items():
            if not filters.match(event):
                continue
            for client in group:
                writer = client.writer
                if writer is None:
                    try:
                        client.queue.put_nowait(event)
                    except asyncio.QueueFull:
                        slow.append(client)
                    continue
                if event.key <= client.seen:
                    continue  # its replay read it from the history before the hub got it live
                state = writer.state()
                if state is None:
                    if data is None:
                        data = chunk(event.frame)
                    writer.transport.write(data)
                    client.written = event.id
                    written += 1
                elif state == SLOW:
                    slow.append(client)
                # closed: the client went away; its stream ends and unsubscribes it
        if written:
            metrics.FRAMES_DELIVERED.inc(written)
        for client in slow:
            self.close(client, SLOW)

    def _advance(self, event_id: str) -> None:
        self.last_id, self.last_key = event_id, parse_id(event_id)

    def close(self, client: Client, reason: str) -> None:
        """Stop feeding a client: its queue is emptied and `reason` becomes its only item."""
        self.unsubscribe(client)
        client.writer = None
        while not client.queue.empty():
            client.queue.get_nowait()
        client.queue.put_nowait(reason)
        if reason == SLOW:
            metrics.CLIENTS_DROPPED.labels(reason).inc()
            log.info("gateway.client_dropped", reason=reason, client=client.peer, buffer=self.buffer)
