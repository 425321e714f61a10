"""The RTTM metrics snapshot, computed from the Redis state by event time.

Windows end at the last complete second before `now`: TPS over the last 10 s
(and a 120 s series), per service and event type over 60 s; DLQ, errors and
logs over 1 min and RTTM_WINDOW_S; latency quantiles over RTTM_WINDOW_S;
pipeline depth from the newest queue metric of each service/topic/partition,
with a trend of the total lag in 10 s steps (a partition's lag holds until its
next metric); stuck trades are non-terminal trades whose latest
event is older than RTTM_STUCK_AFTER_S.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import redis

from services.common.contract import Measures, PartitionLag
from services.common.keys import END_TO_END_STAGE, Keys
from services.common.scripts import register
from services.common.settings import Settings
from services.consumers.defaults import RATE_S, STUCK_LISTED, TPS_NOW_S, TPS_SERIES_S, TREND_STEPS
from services.consumers.rttm import sketch
from services.consumers.rttm.apply import SECOND_MS, TREND_BUCKET_MS
from services.consumers.rttm.finalize import BUCKET_MS


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _counters(
    client: redis.Redis, keys: Keys, seconds: list[int], window_s: int
) -> tuple[Counter[str], Counter[str], Counter[str], list[int]]:
    """The per-second counters summed over the window, the minute and `now` (counters.lua), and the trades of
    each second of the series, newest first."""
    script = register(client, "counters", __package__)
    spans = script(keys=[keys.rttm_counters(sec) for sec in seconds], args=[window_s, RATE_S, TPS_NOW_S, TPS_SERIES_S])
    *sums, series = spans
    totals = [Counter({_text(k): int(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}) for flat in sums]
    return totals[0], totals[1], totals[2], [int(n) for n in series]


def _by(total: Counter[str], prefix: str, per_s: float | None = None) -> dict[str, float]:
    out = {k[len(prefix) :]: v for k, v in total.items() if k.startswith(prefix)}
    if per_s:
        return {k: round(v / per_s, 3) for k, v in sorted(out.items())}
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Span:
    """The seconds and buckets a snapshot at `now_ms` covers."""

    seconds: list[int]  # the per-second counters', newest first: the window and the TPS series
    trend_buckets: list[int]  # the queue trend's 10 s buckets, oldest first
    latency_buckets: list[int]
    stuck_before: float

    @classmethod
    def at(cls, settings: Settings, now_ms: float) -> Span:
        window_s = settings.RTTM_WINDOW_S
        last = int(now_ms) - int(now_ms) % SECOND_MS - SECOND_MS  # last complete second
        trend_last = int(now_ms) - int(now_ms) % TREND_BUCKET_MS
        return cls(
            seconds=[last - i * SECOND_MS for i in range(max(window_s, TPS_SERIES_S))],
            trend_buckets=[trend_last - i * TREND_BUCKET_MS for i in range(TREND_STEPS)][::-1],
            latency_buckets=[trend_last - i * BUCKET_MS for i in range(window_s * 1000 // BUCKET_MS)],
            stuck_before=now_ms - settings.RTTM_STUCK_AFTER_S * 1000,
        )


@dataclass(frozen=True)
class Inputs:
    """What a snapshot reads from Redis, as read."""

    stages: list[str]
    window: Counter[str]
    minute: Counter[str]
    recent: Counter[str]
    series: list[int]  # trades per second of the TPS series, newest first
    queues: dict[Any, Any]
    trends: list[dict[Any, Any]]
    latency_hashes: list[dict[Any, Any]]  # per stage (in `stages` order), per latency bucket
    active: int
    stuck_count: int
    stuck: list[tuple[Any, float]]
    late: Any

    def blank(self) -> bool:
        """Nothing in any window, nothing active, no partition: a state that time alone does not change (nothing
        can leave a window, become stuck or age out), so until the next event every snapshot reads the same but
        for its time (ticker.py then builds it from these inputs without reading Redis)."""
        return not (
            self.window
            or any(self.series)
            or self.queues
            or any(self.trends)
            or any(self.latency_hashes)
            or self.active
            or self.stuck_count
        )


def read(client: redis.Redis, settings: Settings, now_ms: float) -> Inputs:
    """The state a snapshot at `now_ms` is computed from."""
    keys = Keys(settings.KEY_PREFIX)
    span = Span.at(settings, now_ms)
    stages = sorted(_text(s) for s in client.smembers(keys.rttm_stages))
    window, minute, recent, series = _counters(client, keys, span.seconds, settings.RTTM_WINDOW_S)
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.rttm_queues)
        for bucket in span.trend_buckets:
            pipe.hgetall(keys.rttm_queue_trend(bucket))
        for stage in stages:
            for bucket in span.latency_buckets:
                pipe.hgetall(keys.rttm_latency(stage, bucket))
        pipe.zcount(keys.rttm_active, span.stuck_before, "+inf")
        pipe.zcount(keys.rttm_active, "-inf", f"({span.stuck_before}")
        pipe.zrangebyscore(
            keys.rttm_active, "-inf", f"({span.stuck_before}", start=0, num=STUCK_LISTED, withscores=True
        )
        pipe.hget(keys.rttm_late, "events")
        results = pipe.execute()
    queues, rest = results[0], results[1:]
    trends, rest = rest[:TREND_STEPS], rest[TREND_STEPS:]
    n_lat = len(stages) * len(span.latency_buckets)
    latency_hashes, (active, stuck_count, stuck, late) = rest[:n_lat], rest[n_lat:]
    return Inputs(
        stages, window, minute, recent, series, queues, trends, latency_hashes, int(active), int(stuck_count),
        stuck, late,
    )  # fmt: skip


def compute(client: redis.Redis, settings: Settings, now_ms: float) -> Measures:
    """The snapshot's measures (`contract.Measures`); the ticker adds the alerts."""
    return build(read(client, settings, now_ms), settings, now_ms)


def build(inputs: Inputs, settings: Settings, now_ms: float) -> Measures:
    """The measures of what `read` found, for a snapshot at `now_ms`."""
    span = Span.at(settings, now_ms)
    window_s = settings.RTTM_WINDOW_S
    stages, window, minute, recent, series = inputs.stages, inputs.window, inputs.minute, inputs.recent, inputs.series
    queues, trends, latency_hashes = inputs.queues, inputs.trends, inputs.latency_hashes
    active, stuck_count, stuck, late = inputs.active, inputs.stuck_count, inputs.stuck, inputs.late
    latency_buckets, trend_buckets, seconds = span.latency_buckets, span.trend_buckets, span.seconds

    latency = {
        stage: sketch.quantiles(sketch.merge(latency_hashes[i * len(latency_buckets) : (i + 1) * len(latency_buckets)]))
        for i, stage in enumerate(stages)
    }
    partitions: list[PartitionLag] = []
    for field, value in sorted((_text(k), _text(v)) for k, v in queues.items()):
        service, topic, partition = field.split("|")
        snapshot_ms, produced, consumed = (int(float(x)) for x in value.split("|"))
        partitions.append(
            {
                "service": service,
                "topic": topic,
                "partition": int(partition),
                "produced_offset": produced,
                "consumed_offset": consumed,
                "lag": max(0, produced - consumed),
                "snapshot_time": snapshot_ms,
            }
        )
    by_service: Counter[str] = Counter()
    by_topic: Counter[str] = Counter()
    for p in partitions:
        by_service[p["service"]] += p["lag"]
        by_topic[p["topic"]] += p["lag"]
    trend = []  # pairs as lists: what a reader of the JSON gets back
    known: dict[str, int] = {}  # a partition's lag holds until its next metric
    for bucket, h in zip(trend_buckets, trends, strict=True):
        for field, value in h.items():
            _, produced, consumed = _text(value).split("|")
            known[_text(field)] = max(0, int(float(produced)) - int(float(consumed)))
        trend.append([bucket, sum(known.values()) if known else None])
    return {
        "computed_at": int(now_ms),
        "window_s": window_s,
        "tps": {
            "current": round(recent["trade"] / TPS_NOW_S, 3),
            "series": [[sec, int(series[i])] for i, sec in enumerate(seconds[:TPS_SERIES_S])][::-1],
            "by_service": _by(minute, "trade|s|", RATE_S),
            "by_event_type": _by(minute, "trade|t|", RATE_S),
        },
        "trades": {
            "events_in_window": window["trade"],
            "completed": window["completed"],
            "failed": window["failed"],
            "active": int(active) + int(stuck_count),
            "late_events": int(late or 0),
        },
        "latency_ms": {
            "stages": {s: q for s, q in latency.items() if s != END_TO_END_STAGE},
            "end_to_end": latency.get(END_TO_END_STAGE, sketch.quantiles({})),
        },
        "pipeline": {
            "partitions": partitions,
            "by_service": dict(sorted(by_service.items())),
            "by_topic": dict(sorted(by_topic.items())),
            "max_lag": max((p["lag"] for p in partitions), default=0),
            "total_lag": sum(p["lag"] for p in partitions),
            "trend": trend,
        },
        "dlq": {
            "last_1m": minute["dlq"],
            "in_window": window["dlq"],
            "by_service": _by(window, "dlq|s|"),
            "by_reason": _by(window, "dlq|r|"),
        },
        "errors": {
            "last_1m": minute["error"],
            "in_window": window["error"],
            "by_service": _by(window, "error|s|"),
            "by_type": _by(window, "error|e|"),
        },
        "logs": _by(window, "log|"),
        "stuck": {
            "count": int(stuck_count),
            "threshold_s": settings.RTTM_STUCK_AFTER_S,
            "oldest": [{"trade_id": _text(t), "last_event_time": int(score)} for t, score in stuck],
        },
    }
