"""POST /internal/agg-update: workers hand in views W; the API stores and republishes them.

The body is read by the route, not by FastAPI: FastAPI reads and validates a declared body before it runs
the router's dependencies, so the token check would come after an unbounded read, and a caller without
the token would get validation errors back.

A view's `version` is calc-a's count of the batches applied to its symbol, and the newest version wins;
so a version that no worker made (past the symbol's calc-a count, or past MAX_VERSION) would hide every
later view of the symbol. It is refused with 422, and nothing of the request is stored.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator

from services.common import realtime
from services.common.schemas import INT64_MAX, JsonInt, Symbol, envelope
from services.common.scripts import register
from services.orchestrator_api import errors, metrics
from services.orchestrator_api.errors import BAD_PARAMETER
from services.orchestrator_api.ingest.fastpath import Route
from services.orchestrator_api.ingest.routes import ERRORS, read_json
from services.orchestrator_api.security import TOKEN_REFUSED, check_internal_token
from services.orchestrator_api.state import StateDep

MAX_VERSION = 2**53 - 1  # exact as a Lua number (views.lua compares versions) and in the dashboard's JavaScript

router = APIRouter(
    prefix="/internal",
    tags=["internal"],
    dependencies=[Depends(check_internal_token)],
    responses={**TOKEN_REFUSED, **BAD_PARAMETER},
)


class AggUpdate(BaseModel):
    symbol: Symbol
    view: dict[str, Any] = Field(
        description="View W; must carry an integer `version` (calc-a's count of its symbol's batches): "
        "from 0 to 2**53-1 and not past the symbol's calc-a count"
    )
    ts: JsonInt = Field(ge=0, le=INT64_MAX, description="Event time (epoch ms) of the latest tick in the view")

    @field_validator("view")
    @classmethod
    def _storable(cls, view: dict[str, Any]) -> dict[str, Any]:
        # Both go to Redis as they are: the version as a script argument, the view as JSON.
        version = view.get("version", 0)
        if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= MAX_VERSION:
            raise ValueError(f"`version` must be an integer from 0 to 2**53-1, not {str(version)[:40]!r}")
        try:
            orjson.dumps(view)
        except orjson.JSONEncodeError as exc:
            raise ValueError(f"is not storable as JSON: {exc}") from None
        return view


class AggResult(BaseModel):
    published: int
    stale: int = Field(description="Views older than the stored one; stored views only move forward")


ONE, MANY = TypeAdapter(AggUpdate), TypeAdapter(list[AggUpdate])  # by shape: errors then name `body.0.ts`
_ONE = AggUpdate.model_json_schema()
BODY = {"anyOf": [_ONE, {"type": "array", "items": _ONE}]}


@router.post(
    "/agg-update",
    response_model=AggResult,
    responses={status: ERRORS[status] for status in (400, 413, 415)},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": BODY}}}},
)
async def agg_update(request: Request, state: StateDep) -> AggResult:
    """Store each view if it is newer than the stored one and publish it as `symbol.updated`."""
    payload = await read_json(request, state.settings.MAX_BODY_BYTES)
    try:
        updates = (MANY if isinstance(payload, list) else ONE).validate_python(payload)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    items = updates if isinstance(updates, list) else [updates]
    settings = state.settings
    keys: list[str] = [state.keys.history]
    args: list[Any] = [0, settings.PUBSUB_CHANNEL, settings.SYMBOL_IDLE_S]
    size = 0
    for item in items:
        data = {"symbol": item.symbol, "view": item.view, "ts": item.ts}
        env = envelope("symbol.updated", data, symbol=item.symbol)
        keys += (state.keys.view(item.symbol), state.keys.sym_state(item.symbol)["agg"])
        args += (item.view.get("version", 0), orjson.dumps(item.view), env)
        size += len(env)
    args[0] = realtime.history_maxlen(settings, size / len(items)) if items else settings.SSE_HISTORY
    ok, *ids = await register(state.redis, "views", __package__)(keys=keys, args=args) if items else [1]
    if not ok:
        index, current = ids
        raise _ahead(items[index], index if isinstance(payload, list) else None, current)
    published = sum(1 for i in ids if i)
    metrics.VIEWS.labels("published").inc(published)
    metrics.VIEWS.labels("stale").inc(len(ids) - published)
    return AggResult(published=published, stale=len(ids) - published)


def endpoints() -> dict[str, Route]:
    """Path -> (credential check, endpoint) for the fast path (ingest/fastpath.py): a call per worker job."""
    return {"/internal/agg-update": (check_internal_token, agg_update)}


def _ahead(item: AggUpdate, index: int | None, current: int) -> errors.Invalid:
    field = "body." + ("" if index is None else f"{index}.") + "view.version"
    message = (
        f"version {item.view.get('version', 0)} is ahead of calc-a's version {current} of {item.symbol}: views are "
        "numbered by calc-a, and a version past it would hide every later view; nothing was stored"
    )
    return errors.Invalid.field(field, message)
