"""GET /system: what a dashboard's status strip shows (queue depth, flush backlog, items accepted)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.common.contract import SystemStatus
from services.orchestrator_api import metrics
from services.orchestrator_api.ingest import budget
from services.orchestrator_api.security import check_api_key
from services.orchestrator_api.state import StateDep

router = APIRouter(tags=["read"], dependencies=[Depends(check_api_key)])


@router.get("/system", response_model=SystemStatus)
async def system(state: StateDep) -> SystemStatus:
    """RQ queue depth by state, batches and items waiting for the flusher, items waiting for the workers,
    items accepted since start (by kind), and Redis: memory used, and the steady state it levels off at per
    key family at the current rate."""
    figures = await metrics.queue_figures(state.redis, state.settings)
    accepted = {k.decode(): int(v) for k, v in (await state.redis.hgetall(state.keys.accepted)).items()}
    rates = state.rate_meter.rates(accepted, await state.redis.zcard(state.keys.symbols))
    return {
        "queue": figures["queue"],
        "flush_backlog": figures["flush_backlog"],
        "unflushed_items": figures["unflushed_items"],
        "queued_items": figures["queued_items"],
        "ingest": {"accepted_total": sum(accepted.values()), "accepted_by_kind": accepted},
        "redis": await budget.redis_report(state.redis, state.settings, rates),
    }
