"""Read API of trade-pipeline monitoring: snapshot, trade traces, stuck trades, DLQ, pipeline, alerts.

The snapshot (and its pipeline section) is what the elected worker computed
last, at most RTTM_TICK_S old; traces, DLQ entries and alert history come
from Postgres, joined with what Redis holds that the flusher has not written yet.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy import func, select

from services.common.contract import (
    Alerts,
    DlqEvents,
    Pipeline,
    RttmSnapshot,
    StuckTrades,
    TradeEvent,
    TradeTrace,
)
from services.common.db import rttm_alerts, rttm_dlq_events, rttm_error_events, rttm_trade_events
from services.common.keys import MARK
from services.common.schemas import ErrorBody
from services.orchestrator_api.defaults import LIMIT_MAX
from services.orchestrator_api.errors import BAD_PARAMETER, NoSnapshot, NotFound
from services.orchestrator_api.read.routes import stored_json
from services.orchestrator_api.security import API_KEY_REFUSED, check_api_key
from services.orchestrator_api.state import StateDep

router = APIRouter(
    prefix="/rttm",
    tags=["rttm"],
    dependencies=[Depends(check_api_key)],
    responses={**API_KEY_REFUSED, **BAD_PARAMETER},
)

NO_SNAPSHOT = "no RTTM snapshot yet: the workers compute one each second (is a worker running?)"
NOT_YET: dict[int | str, dict[str, Any]] = {503: {"model": ErrorBody, "description": NO_SNAPSHOT}}
TradeIdPath = Annotated[str, Path(pattern=r"^[\x21-\x7e]{1,128}$")]
Limit = Annotated[int, Query(ge=1, description=f"capped at {LIMIT_MAX}")]


def _ms(value: Any) -> int:
    return int(value.timestamp() * 1000)


async def _snapshot(state: StateDep) -> bytes:
    raw: bytes | None = await state.redis.get(state.keys.rttm_snapshot)
    if raw is None:
        raise NoSnapshot(NO_SNAPSHOT, 1)
    return raw


@router.get("/metrics", response_model=RttmSnapshot, responses=NOT_YET)
async def metrics(state: StateDep) -> Response:
    """TPS, stage and end-to-end latency p50/p95/p99, pipeline depth, DLQ and error counts, stuck trades, alerts."""
    return stored_json(await _snapshot(state))  # as the ticker built it


@router.get("/pipeline", response_model=Pipeline, responses=NOT_YET)
async def pipeline(state: StateDep) -> Response:
    """Lag (produced - consumed offset) per topic/partition and per service, latest and trend."""
    snap: RttmSnapshot = orjson.loads(await _snapshot(state))
    return stored_json(orjson.dumps({"computed_at": snap["computed_at"], **snap["pipeline"]}))


@router.get(
    "/trades/{trade_id}",
    response_model=TradeTrace,
    responses={404: {"model": ErrorBody, "description": "No event of this trade is known"}},
)
async def trade(trade_id: TradeIdPath, state: StateDep) -> TradeTrace:
    """A trade's lifecycle: its events in event-time order with the latency of each stage, plus DLQ and errors."""
    async with state.engine.connect() as conn:
        rows = (
            (await conn.execute(select(rttm_trade_events).where(rttm_trade_events.c.trade_id == trade_id)))
            .mappings()
            .all()
        )
        dlq = (
            (await conn.execute(select(rttm_dlq_events).where(rttm_dlq_events.c.trade_id == trade_id))).mappings().all()
        )
        errors = (
            (await conn.execute(select(rttm_error_events).where(rttm_error_events.c.trade_id == trade_id)))
            .mappings()
            .all()
        )
    live = await state.redis.hgetall(state.keys.rttm_trade(trade_id))
    events: dict[str, TradeEvent] = {
        r["event_key"]: {
            "event_key": r["event_key"],
            "service_name": r["service_name"],
            "event_type": r["event_type"],
            "event_status": r["event_status"],
            "event_time": _ms(r["event_time"]),
            "source_queue": r["source_queue"],
            "target_queue": r["target_queue"],
            "topic_name": r["topic_name"],
            "partition": r["partition"],
            "offset": r["offset"],
            "message": r["message"],
            "stage_latency_ms": None,
        }
        for r in rows
    }
    for raw_key, raw_value in live.items():  # accepted, not flushed yet
        key = raw_key.decode()
        if key.startswith(MARK) or key in events:
            continue
        t, service, type_, status = raw_value.decode().split("|", 3)
        events[key] = {"event_key": key, "service_name": service, "event_type": type_, "event_status": status,
                       "event_time": int(float(t)), "stage_latency_ms": None}  # fmt: skip
    if not events:
        raise NotFound(f"no event of trade {trade_id!r} is known")
    ordered = sorted(events.values(), key=lambda e: (e["event_time"], e["event_key"]))
    previous = None
    for event in ordered:
        event["stage_latency_ms"] = None if previous is None else event["event_time"] - previous
        previous = event["event_time"]
    terminal = next((e for e in ordered if e["event_status"] in state.settings.failure_statuses), None) or next(
        (e for e in ordered if e["event_type"] in state.settings.success_event_types), None
    )
    if terminal is None:
        status = "in_flight"
    else:
        status = "failed" if terminal["event_status"] in state.settings.failure_statuses else "completed"
    return {
        "trade_id": trade_id,
        "status": status,
        "events": ordered,
        "end_to_end_ms": ordered[-1]["event_time"] - ordered[0]["event_time"],
        "dlq": [
            {
                "service_name": d["service_name"],
                "topic_name": d["topic_name"],
                "reason": d["reason"],
                "event_time": _ms(d["event_time"]),
            }
            for d in dlq
        ],  # fmt: skip
        "errors": [
            {
                "service_name": e["service_name"],
                "error_type": e["error_type"],
                "error_message": e["error_message"],
                "event_time": _ms(e["event_time"]),
            }
            for e in errors
        ],  # fmt: skip
    }


@router.get("/stuck", response_model=StuckTrades)
async def stuck(state: StateDep, limit: Limit = 100) -> StuckTrades:
    """Non-terminal trades with no event for longer than RTTM_STUCK_AFTER_S, oldest first, with their last event."""
    before = time.time() * 1000 - state.settings.RTTM_STUCK_AFTER_S * 1000
    limit = min(limit, LIMIT_MAX)
    total = await state.redis.zcount(state.keys.rttm_active, "-inf", f"({before}")
    found = await state.redis.zrangebyscore(
        state.keys.rttm_active, "-inf", f"({before}", start=0, num=limit, withscores=True
    )
    async with state.redis.pipeline(transaction=False) as pipe:
        for trade_id, _ in found:
            pipe.hgetall(state.keys.rttm_trade(trade_id.decode()))
        hashes = await pipe.execute()
    trades = []
    for (trade_id, score), fields in zip(found, hashes, strict=True):
        last = max(
            (v.decode().split("|", 3) for k, v in fields.items() if not k.startswith(MARK.encode())),
            key=lambda parts: float(parts[0]),
            default=None,
        )
        trades.append(
            {
                "trade_id": trade_id.decode(),
                "last_event_time": int(score),
                "last_service": last[1] if last else None,
                "last_event_type": last[2] if last else None,
            }
        )
    return {"threshold_s": state.settings.RTTM_STUCK_AFTER_S, "count": total, "trades": trades}


@router.get("/dlq", response_model=DlqEvents)
async def dlq_events(state: StateDep, limit: Limit = 100) -> DlqEvents:
    """Latest dead-letter events from Postgres, newest first."""
    limit = min(limit, LIMIT_MAX)
    query = (
        select(rttm_dlq_events).order_by(rttm_dlq_events.c.event_time.desc(), rttm_dlq_events.c.id.desc()).limit(limit)
    )
    async with state.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return {
        "limit": limit,
        "events": [
            {
                "trade_id": r["trade_id"],
                "service_name": r["service_name"],
                "topic_name": r["topic_name"],
                "reason": r["reason"],
                "event_time": _ms(r["event_time"]),
            }  # fmt: skip
            for r in rows
        ],
    }


@router.get("/alerts", response_model=Alerts)
async def alerts(state: StateDep, limit: Limit = 100) -> Alerts:
    """Alerts firing now, and the latest alerts (fired and resolved) from Postgres, newest first."""
    limit = min(limit, LIMIT_MAX)
    firing = [orjson.loads(v) for v in (await state.redis.hgetall(state.keys.rttm_alerts)).values()]
    a = rttm_alerts.c
    query = (
        select(
            a.alert_id,
            a.rule,
            func.min(a.event_time).filter(a.state == "fired").label("fired_at"),
            func.max(a.event_time).filter(a.state == "resolved").label("resolved_at"),
            func.max(a.threshold).label("threshold"),
            func.max(a.value).filter(a.state == "fired").label("value"),
            func.max(a.message).filter(a.state == "fired").label("message"),
        )
        .group_by(a.alert_id, a.rule)
        .order_by(func.min(a.event_time).desc())
        .limit(limit)
    )
    async with state.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    history = [
        {
            "alert_id": r["alert_id"],
            "rule": r["rule"],
            "fired_at": _ms(r["fired_at"]) if r["fired_at"] else None,
            "resolved_at": _ms(r["resolved_at"]) if r["resolved_at"] else None,
            "value": r["value"],
            "threshold": r["threshold"],
            "message": r["message"],
        }
        for r in rows
    ]
    return {"firing": sorted(firing, key=lambda x: x["fired_at"]), "history": history}
