"""Alert rules over the RTTM snapshot: fire once when crossed, resolve once when back under.

Rules come from the environment (one threshold per metric, `RTTM_ALERT_*`)
and, optionally, a YAML file (`RTTM_ALERTS_FILE`) that adds rules or
overrides them by name:

    rules:
      - name: pipeline_depth      # the env rules are named after their metric
        metric: pipeline_depth
        threshold: 500
      - name: validation_errors
        metric: errors_per_min
        threshold: 5
      - name: stuck_trades
        enabled: false

A transition is stored in the firing set, queued for Postgres (`rttm_alerts`,
through the flush stream, one row per transition) and published as
`alert.fired` / `alert.resolved`, all in one Redis transaction.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis
import yaml
from pydantic import BaseModel, ConfigDict, Field

from services.common import flush_stream
from services.common.contract import FiringAlert, Measures
from services.common.keys import Keys
from services.common.realtime import publish_args
from services.common.schemas import envelope
from services.common.scripts import register
from services.common.settings import Settings

METRICS: dict[str, Callable[[Measures], float | None]] = {
    "pipeline_depth": lambda s: s["pipeline"]["max_lag"],
    "dlq_per_min": lambda s: s["dlq"]["last_1m"],
    "errors_per_min": lambda s: s["errors"]["last_1m"],
    "p99_latency_ms": lambda s: s["latency_ms"]["end_to_end"]["p99"],
    "stuck_trades": lambda s: s["stuck"]["count"],
}
ENV_THRESHOLDS = {
    "pipeline_depth": "RTTM_ALERT_PIPELINE_DEPTH",
    "dlq_per_min": "RTTM_ALERT_DLQ_PER_MIN",
    "errors_per_min": "RTTM_ALERT_ERRORS_PER_MIN",
    "p99_latency_ms": "RTTM_ALERT_P99_MS",
    "stuck_trades": "RTTM_ALERT_STUCK_TRADES",
}


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    threshold: float


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    metric: str | None = None
    threshold: float | None = None
    enabled: bool = True


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[RuleSpec] = []


def load_rules(settings: Settings) -> list[Rule]:
    rules = {m: Rule(m, m, float(getattr(settings, env))) for m, env in ENV_THRESHOLDS.items()}
    if settings.RTTM_ALERTS_FILE:
        spec = RuleFile.model_validate(yaml.safe_load(Path(settings.RTTM_ALERTS_FILE).read_text()) or {})
        for r in spec.rules:
            if not r.enabled:
                rules.pop(r.name, None)
                continue
            base = rules.get(r.name)
            metric = r.metric or (base.metric if base else None)
            threshold = r.threshold if r.threshold is not None else (base.threshold if base else None)
            if metric not in METRICS or threshold is None:
                raise ValueError(f"alert rule {r.name!r} needs a metric (one of {sorted(METRICS)}) and a threshold")
            rules[r.name] = Rule(r.name, metric, threshold)
    for rule in rules.values():  # -inf would fire at once, and orjson stores a non-finite number as null
        if not math.isfinite(rule.threshold):
            raise ValueError(f"alert rule {rule.name!r}: threshold must be a finite number, not {rule.threshold}")
    return list(rules.values())


def _describe(rule: Rule, value: float | None, snapshot: Measures) -> str:
    text = f"{rule.metric} is {value:g}" if value is not None else f"{rule.metric} has no value"
    if rule.metric == "pipeline_depth" and snapshot["pipeline"]["partitions"]:
        worst = max(snapshot["pipeline"]["partitions"], key=lambda p: p["lag"])
        text += f" ({worst['service']} on {worst['topic']}/{worst['partition']})"
    return f"{text}; threshold {rule.threshold:g}"


def evaluate(
    client: redis.Redis, settings: Settings, rules: list[Rule], snapshot: Measures, now_ms: float
) -> list[FiringAlert]:
    """Fire and resolve against the firing set; returns the alerts firing afterwards."""
    keys = Keys(settings.KEY_PREFIX)
    firing: dict[str, FiringAlert] = {k.decode(): orjson.loads(v) for k, v in client.hgetall(keys.rttm_alerts).items()}
    transitions: list[tuple[str, Mapping[str, Any]]] = []  # (state, alert)
    for rule in rules:
        value = METRICS[rule.metric](snapshot)
        crossed = value is not None and value > rule.threshold
        if crossed and rule.name not in firing:
            alert: FiringAlert = {
                "alert_id": uuid.uuid4().hex,
                "rule": rule.name,
                "metric": rule.metric,
                "threshold": rule.threshold,
                "value": value,
                "message": _describe(rule, value, snapshot),
                "fired_at": int(now_ms),
            }
            firing[rule.name] = alert
            transitions.append(("fired", alert))
        elif not crossed and rule.name in firing:
            message = _describe(rule, value, snapshot)
            resolved = {**firing.pop(rule.name), "resolved_at": int(now_ms), "value": value or 0.0, "message": message}
            transitions.append(("resolved", resolved))
    if transitions:
        _record(client, settings, keys, transitions, now_ms)
    return sorted(firing.values(), key=lambda a: a["fired_at"])


def _record(
    client: redis.Redis, settings: Settings, keys: Keys, transitions: list[tuple[str, Mapping[str, Any]]], now_ms: float
) -> None:
    rows = [
        {
            "event_key": f"{a['alert_id']}:{state}",
            "event_id": None,
            "alert_id": a["alert_id"],
            "rule": a["rule"],
            "state": state,
            "value": float(a["value"]),
            "threshold": float(a["threshold"]),
            "message": a["message"],
            "event_time": int(now_ms),
            "received_at": now_ms,
        }
        for state, a in transitions
    ]
    envelopes = [envelope(f"alert.{state}", {**a, "state": state}) for state, a in transitions]
    with client.pipeline(transaction=True) as pipe:
        for state, a in transitions:
            if state == "fired":
                pipe.hset(keys.rttm_alerts, a["rule"], orjson.dumps(a))
            else:
                pipe.hdel(keys.rttm_alerts, a["rule"])
        flush_stream.append(pipe, keys.flush_stream, f"alerts-{uuid.uuid4().hex}", {"alert": rows})
        register(client, "publish_many")(**publish_args(settings, envelopes), client=pipe)
        pipe.execute()
