"""Measure terminal trades: stage and end-to-end latencies into the sketches, once per trade.

A trade is measured when its grace period after the terminal event is over,
so events that arrived out of order within it are included. Stage latency is
the time between consecutive events of the trade (by event time, ties by
event key), attributed to the later event's service; end-to-end is first to
last event of a completed trade. Both go into the 10 s bucket of the trade's
last event.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
import redis

from services.common.keys import END_TO_END_STAGE, MARK, TERM_MARK, Keys
from services.common.logging import get_logger
from services.common.scripts import register
from services.common.settings import Settings
from services.consumers.defaults import BUCKET_MS, PER_TICK
from services.consumers.rttm import sketch
from services.consumers.rttm.apply import SUCCESS

log = get_logger(__name__)


def parse_events(fields: dict[bytes, bytes]) -> tuple[list[tuple[int, str, str, str, str]], int]:
    """(time, event_key, service, type, status) sorted, and the terminal mark (0 if none).

    Raises ValueError for a hash in no shape `rttm/apply.lua` writes."""
    events = []
    term = 0
    for raw_key, raw_value in fields.items():
        key, value = raw_key.decode(), raw_value.decode()
        if key == TERM_MARK:
            term = int(value)
        elif not key.startswith(MARK):
            t, service, type_, status = value.split("|", 3)
            events.append((int(float(t)), key, service, type_, status))
    events.sort()
    return events, term


def latencies(events: list[tuple[int, str, str, str, str]], term: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for before, after in zip(events, events[1:], strict=False):
        out[after[2]].append(float(after[0] - before[0]))
    if term == SUCCESS and len(events) > 1:
        out[END_TO_END_STAGE].append(float(events[-1][0] - events[0][0]))
    return out


def finalize_due(client: redis.Redis, settings: Settings, now_ms: float) -> int:
    """Measure the trades whose grace period is over; returns how many were measured."""
    keys = Keys(settings.KEY_PREFIX)
    due = client.zrangebyscore(keys.rttm_due, "-inf", now_ms, start=0, num=PER_TICK)
    if not due:
        return 0
    ids = [d.decode() for d in due]
    with client.pipeline(transaction=False) as pipe:
        for trade_id in ids:
            pipe.hgetall(keys.rttm_trade(trade_id))
        hashes = pipe.execute()
    work: list[list[Any]] = []
    for trade_id, fields in zip(ids, hashes, strict=True):
        try:
            events, term = parse_events(fields)
        except ValueError as exc:  # e.g. left by an earlier version: measured as nothing, not retried every tick
            log.error("rttm.trade_unreadable", trade_id=trade_id[:128], error=str(exc)[:200])
            events, term = [], 0
        if not events:  # expired before it was measured
            work.append([trade_id, 0, []])
            continue
        last = events[-1][0]
        stages = []
        for stage, values in latencies(events, term).items():
            stages += [[stage, b, n] for b, n in sketch.counts(values).items()]
        work.append([trade_id, last - last % BUCKET_MS, stages])
    measured, over = register(client, "finalize", __package__)(
        keys=[keys.rttm_stages, keys.rttm_due],
        args=[
            keys.rttm_trade(""),
            keys.rttm_latency("", 0).removesuffix(":0"),
            settings.RTTM_RETENTION_S,
            settings.RTTM_MAX_STAGES,
            orjson.dumps(work),
        ],
    )
    if over:
        client.hincrby(keys.rttm_late, "stages_over_cap", int(over))
    return int(measured)
