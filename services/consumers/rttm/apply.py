"""Fold a batch of RTTM events into the monitoring state (see `rttm/apply.lua`)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import orjson
import redis

from services.common.keys import Keys
from services.common.kinds import RTTM_POSTED
from services.common.scripts import register
from services.common.settings import Settings
from services.consumers.defaults import REASON_CHARS, TREND_BUCKET_MS

SECOND_MS = 1000
NOT_TERMINAL, SUCCESS, FAILURE = 0, 1, 2


def terminal(settings: Settings, event: dict[str, Any]) -> int:
    if event["event_status"] in settings.failure_statuses:
        return FAILURE
    if event["event_type"] in settings.success_event_types:
        return SUCCESS
    return NOT_TERMINAL


def _second(ms: int) -> int:
    return ms - ms % SECOND_MS


def key_names(keys: Keys) -> dict[str, str]:
    """What `rttm/apply.lua` writes: whole names, or the prefix a time bucket or trade id completes."""
    return {
        "counters": keys.rttm_counters(0).removesuffix("0"),
        "queues": keys.rttm_queues,
        "trend": keys.rttm_queue_trend(0).removesuffix("0"),
        "trade": keys.rttm_trade(""),
        "active": keys.rttm_active,
        "due": keys.rttm_due,
        "late": keys.rttm_late,
        "rev": keys.rttm_rev,
    }


def prepare(settings: Settings, items: dict[str, list[dict[str, Any]]], now_ms: float) -> dict[str, Any]:
    counts: Counter[tuple[int, str]] = Counter()
    trades = []
    for e in items.get("trade", []):
        sec, end = _second(e["event_time"]), terminal(settings, e)
        counts[sec, "trade"] += 1
        counts[sec, f"trade|s|{e['service_name']}"] += 1
        counts[sec, f"trade|t|{e['event_type']}"] += 1
        if end == SUCCESS:
            counts[sec, "completed"] += 1
        elif end == FAILURE:
            counts[sec, "failed"] += 1
        trades.append(
            [e["trade_id"], e["event_key"], e["event_time"], e["service_name"], e["event_type"], e["event_status"], end]
        )
    for e in items.get("dlq", []):
        sec = _second(e["event_time"])
        counts[sec, "dlq"] += 1
        counts[sec, f"dlq|s|{e['service_name']}"] += 1
        counts[sec, f"dlq|r|{e['reason'][:REASON_CHARS]}"] += 1
    for e in items.get("error", []):
        sec = _second(e["event_time"])
        counts[sec, "error"] += 1
        counts[sec, f"error|s|{e['service_name']}"] += 1
        counts[sec, f"error|e|{e['error_type']}"] += 1
    for e in items.get("log", []):
        counts[_second(e["event_time"]), f"log|{e['log_level']}"] += 1
    queues = [
        [
            f"{q['service_name']}|{q['topic_name']}|{q['partition']}",
            q["snapshot_time"],
            q["produced_offset"],
            q["consumed_offset"],
            q["snapshot_time"] - q["snapshot_time"] % TREND_BUCKET_MS,
        ]
        for q in items.get("queue", [])
    ]
    return {
        "k": key_names(Keys(settings.KEY_PREFIX)),
        "max_queues": settings.RTTM_MAX_QUEUES,
        "now": int(now_ms),
        "ttl": settings.RTTM_RETENTION_S,
        "grace": int(settings.RTTM_FINALIZE_GRACE_S * 1000),
        "counters": [[sec, name, n] for (sec, name), n in sorted(counts.items())],
        "queues": queues,
        "trades": trades,
        "rev": uuid.uuid4().hex,  # never one seen before, even after Redis lost its data (ticker.py)
    }


def has_rttm(items: dict[str, list[Any]]) -> bool:
    return any(items.get(kind) for kind in RTTM_POSTED)


def apply(
    client: redis.Redis, settings: Settings, batch_id: str, items: dict[str, list[dict[str, Any]]], now_ms: float
) -> bool:
    """Apply once; False when this batch had been applied already (a retried job)."""
    keys = Keys(settings.KEY_PREFIX)
    payload = orjson.dumps(prepare(settings, items, now_ms))
    return bool(register(client, "apply", __package__)(keys=[keys.batch(batch_id)], args=[payload]))
