"""POST /internal/agg-update: workers hand in views W; the API stores and republishes them."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from services.common.schemas import Symbol, envelope
from services.common.scripts import register
from services.orchestrator_api import metrics
from services.orchestrator_api.security import check_internal_token
from services.orchestrator_api.state import StateDep

router = APIRouter(prefix="/internal", tags=["internal"], dependencies=[Depends(check_internal_token)])


class AggUpdate(BaseModel):
    symbol: Symbol
    view: dict[str, Any] = Field(description="View W; must carry an integer `version`")
    ts: int = Field(description="Event time (epoch ms) of the latest tick in the view")


class AggResult(BaseModel):
    published: int
    stale: int = Field(description="Views older than the stored one; stored views only move forward")


@router.post("/agg-update", response_model=AggResult)
async def agg_update(updates: AggUpdate | list[AggUpdate], state: StateDep) -> AggResult:
    """Store each view if it is newer than the stored one and publish it as `symbol.updated`."""
    items = updates if isinstance(updates, list) else [updates]
    args: list[Any] = [
        state.keys.view(""),
        state.keys.history,
        state.settings.SSE_HISTORY,
        state.settings.PUBSUB_CHANNEL,
    ]
    for item in items:
        data = {"symbol": item.symbol, "view": item.view, "ts": item.ts}
        args += (item.symbol, int(item.view.get("version", 0)), orjson.dumps(item.view))
        args.append(envelope("symbol.updated", data, symbol=item.symbol))
    ids = await register(state.redis, "views")(args=args) if items else []
    published = sum(1 for i in ids if i)
    metrics.VIEWS.labels("published").inc(published)
    metrics.VIEWS.labels("stale").inc(len(ids) - published)
    return AggResult(published=published, stale=len(ids) - published)
