"""The RTTM ticker: once a second, one worker process measures, snapshots, alerts and publishes.

Every worker runs a ticker thread; a Redis lease (renewed each tick, lasting
a little over two ticks) elects the one that works, and another takes over
within seconds if it dies. A tick measures the trades whose grace period is
over, drops trades silent for longer than the retention, computes the
snapshot, evaluates the alert rules, stores the snapshot (for GET
/rttm/metrics) and publishes it as `rttm.metrics` -- unless nothing but its
time changed since the last one it published, which it then publishes only
every UNCHANGED_PUBLISH_S: an idle pipeline costs no event a second for the
gateways to fan out, and a dashboard still sees the monitor is alive.

An idle pipeline costs little to measure too: when the last state read was
blank (nothing in any window, nothing active; `snapshot.Inputs.blank`), no
batch was applied since (apply.lua sets a new token in `Keys.rttm_rev` with
each) and no trade is due, the tick builds the snapshot from those inputs
at the new time: one round trip for the lease and the token, then the store.
"""

from __future__ import annotations

import threading
import time
import uuid

import orjson
import redis

from services.common.contract import RttmSnapshot
from services.common.keys import Keys
from services.common.logging import get_logger
from services.common.realtime import publish_sync
from services.common.schemas import envelope
from services.common.scripts import register
from services.common.settings import Settings
from services.consumers.defaults import SNAPSHOT_TTL_S, UNCHANGED_PUBLISH_S
from services.consumers.rttm import alerts, snapshot
from services.consumers.rttm.finalize import finalize_due

log = get_logger(__name__)


class Ticker:
    def __init__(self, settings: Settings, client: redis.Redis, name: str | None = None) -> None:
        self.settings = settings
        self.redis = client
        self.keys = Keys(settings.KEY_PREFIX)
        self.name = name or uuid.uuid4().hex
        self.rules = alerts.load_rules(settings)
        self.lease_ms = int(settings.RTTM_TICK_S * 2500)
        self.stop = threading.Event()
        self.published: tuple[bytes, float] | None = None  # what the last published snapshot said (_content), when
        # (change token, inputs) of the last snapshot read when its state was blank (snapshot.Inputs.blank)
        self.quiet: tuple[bytes | None, snapshot.Inputs] | None = None

    def lead(self) -> tuple[bool, bytes | None, int]:
        """Hold or take the lease; with it, the state's change token (apply.lua) and how many trades are due."""
        with self.redis.pipeline(transaction=False) as pipe:
            register(self.redis, "leader", __package__)(
                keys=[self.keys.rttm_leader], args=[self.name, self.lease_ms], client=pipe
            )
            pipe.get(self.keys.rttm_rev)
            pipe.zcard(self.keys.rttm_due)
            led, rev, due = pipe.execute()
        return bool(led), rev, int(due)

    def tick(self, now_ms: float | None = None) -> RttmSnapshot | None:
        """One round if this process leads; returns the published snapshot."""
        led, rev, due = self.lead()
        if not led:
            self.quiet = None
            return None
        now_ms = time.time() * 1000.0 if now_ms is None else now_ms
        if self.quiet is not None and self.quiet[0] == rev and not due:
            # Blank when last read and no event since: the same inputs give this second's snapshot.
            snap: RttmSnapshot = {**snapshot.build(self.quiet[1], self.settings, now_ms), "alerts": []}
        else:
            finalize_due(self.redis, self.settings, now_ms)
            forget_before = now_ms - self.settings.RTTM_RETENTION_S * 1000
            self.redis.zremrangebyscore(self.keys.rttm_active, "-inf", forget_before)
            self.forget_partitions(forget_before)
            inputs = snapshot.read(self.redis, self.settings, now_ms)
            measures = snapshot.build(inputs, self.settings, now_ms)
            firing = alerts.evaluate(self.redis, self.settings, self.rules, measures, now_ms)
            snap = {**measures, "alerts": firing}
            # The token read before the state: an event applied since makes the next tick read again.
            self.quiet = (rev, inputs) if inputs.blank() and not firing else None
        self.redis.set(self.keys.rttm_snapshot, orjson.dumps(snap), ex=SNAPSHOT_TTL_S)
        content = _content(snap)
        if (
            self.published is None
            or self.published[0] != content
            or now_ms - self.published[1] >= UNCHANGED_PUBLISH_S * 1000
        ):
            publish_sync(self.redis, self.settings, [envelope("rttm.metrics", snap)])
            self.published = (content, now_ms)
        return snap

    def forget_partitions(self, before_ms: float) -> int:
        """Drop the latest metric of partitions that reported nothing since `before_ms` (values are "time|...")."""
        stale = [
            field
            for field, value in self.redis.hgetall(self.keys.rttm_queues).items()
            if float(value.split(b"|", 1)[0]) < before_ms
        ]
        if stale:
            self.redis.hdel(self.keys.rttm_queues, *stale)
        return len(stale)

    def run(self) -> None:
        log.info("rttm.ticker_started", worker=self.name, rules=[r.name for r in self.rules])
        while not self.stop.wait(self.settings.RTTM_TICK_S):
            try:
                self.tick()
            except redis.RedisError as exc:
                log.warning("rttm.tick_failed", error=str(exc))
            except Exception:
                log.exception("rttm.tick_failed")

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="rttm-ticker", daemon=True)
        thread.start()
        return thread


def _content(snap: RttmSnapshot) -> bytes:
    """What a snapshot says besides the time: its TPS series without the timestamps, which move every second."""
    tps = {**snap["tps"], "series": [value for _, value in snap["tps"]["series"]]}
    return orjson.dumps({**snap, "computed_at": 0, "tps": tps}, option=orjson.OPT_SORT_KEYS)
