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
from services.realtime_gateway.direct import Writer
from services.realtime_gateway.frames import BadEnvelope, Event, Filters, parse
from services.realtime_gateway.groups import Client, Group, write
from services.realtime_gateway.history import History

log = get_logger(__name__)
SLOW = "slow"  # close reason: the client's queue was full
SHUTDOWN = "shutdown"  # close reason: the server is stopping


class Hub:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.channel = settings.PUBSUB_CHANNEL
        self.buffer = settings.SSE_CLIENT_BUFFER
        self.buffer_bytes = settings.SSE_CLIENT_BUFFER_BYTES
        self.history = History(redis, settings)
        self.groups: dict[tuple[Filters, float | None], Group] = {}  # by (filters, ?conflate=): groups.py
        self.last_id: str | None = None
        self.last_key: tuple[int, int] = (-1, -1)
        self.subscribed = asyncio.Event()
        self._subscriptions = 0
        self.per_tick_clients = 0  # clients that named `tick.received` in ?types=
        self.per_tick_asked = asyncio.Event()  # set when one joins: demand.py tells the API at once

    def subscribe(self, filters: Filters, peer: str = "-", interval: float | None = None) -> Client:
        """A new client on the queue path; its stream calls `go_live` once it has sent what it was owed."""
        client = Client(filters, interval, self.buffer, peer, self.last_id)
        group = self.groups.get(client.key)
        if group is None:
            group = self.groups[client.key] = Group(filters, interval)
        group.queued.add(client)
        if client.per_tick:
            self.per_tick_clients += 1
            self.per_tick_asked.set()
        return client

    def go_live(self, client: Client, writer: Writer, written: str | None, after: tuple[int, int]) -> None:
        """The hub writes this client's events from now on (its queue is empty: see `Client.go_live`)."""
        group = self.groups.get(client.key)
        if group is None or client not in group.queued:
            return  # dropped or stopped meanwhile: its queue holds the reason
        client.go_live(writer, written, after)
        group.queued.discard(client)
        group.live.add(client)

    def unsubscribe(self, client: Client) -> None:
        group = self.groups.get(client.key)
        if group is not None and group.discard(client):
            if not group:
                del self.groups[client.key]
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
        slow: list[Client] = []
        written = 0
        for group in self.groups.values():
            if not group.filters.match(event):
                continue
            for client in group.queued:
                try:
                    client.queue.put_nowait(event)
                except asyncio.QueueFull:
                    slow.append(client)
            if not group.live:
                continue
            if group.conflator is None:
                written += write(group.live, [event], slow)
                continue
            now = asyncio.get_running_loop().time()  # the clock of the streams' own conflators (anyio's)
            written += write(group.live, group.conflator.offer(event, now), slow)
            self._schedule(group)
        self._done(written, slow)

    def _schedule(self, group: Group) -> None:
        """Flush the group's pending events when its window ends."""
        due = group.conflator.due() if group.conflator else None
        if due is not None and group.timer is None:
            group.timer = asyncio.get_running_loop().call_at(due, self._flush, group)

    def _flush(self, group: Group) -> None:
        group.timer = None
        if group.conflator is None or not group.live:
            return
        slow: list[Client] = []
        written = write(group.live, group.conflator.flush(asyncio.get_running_loop().time()), slow)
        self._schedule(group)
        self._done(written, slow)

    def _done(self, written: int, slow: list[Client]) -> None:
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
