"""POST /ingest/*: auth, validate, de-duplicate, enqueue, publish, for ticks and RTTM events.

Nothing here touches Postgres: a 200 means the items are in Redis (queued for
the workers and buffered for the flusher).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute

from services.common.kinds import DLQ, ERROR, LOG, QUEUE, TICK, TRADE, Kind
from services.common.logging import get_logger
from services.common.schemas import ErrorBody, IngestResult
from services.orchestrator_api import errors, metrics
from services.orchestrator_api.ingest.fastpath import Route
from services.orchestrator_api.ingest.items import REFUSED, account, validate
from services.orchestrator_api.security import check_basic
from services.orchestrator_api.state import StateDep

log = get_logger(__name__)
router = APIRouter(prefix="/ingest", tags=["ingest"], dependencies=[Depends(check_basic)])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Body is not valid JSON"},
    401: {"model": ErrorBody, "description": "Missing or wrong Basic Auth credentials"},
    413: {"model": ErrorBody, "description": "Body or batch too large"},
    415: {"model": ErrorBody, "description": "Content-Type is not application/json"},
    422: {
        "model": ErrorBody,
        "description": "Invalid tick(s), every bad field named; or new symbols past MAX_SYMBOLS (nothing stored)",
    },
    429: {
        "model": ErrorBody,
        "description": "This API process holds INGEST_MAX_PENDING items; nothing was stored, retry after Retry-After",
    },
    503: {
        "model": ErrorBody,
        "description": "Redis unavailable, or the backlog is over its bound; nothing was stored, "
        "retry with the same event_id after Retry-After",
    },
}


def _body_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _schema(kind: Kind) -> dict[str, Any]:
    return kind.model.model_json_schema(ref_template="#/components/schemas/{model}")


JSON = "application/json"


def require_json(request: Request) -> None:
    """415 unless the body is declared JSON. A browser posts text/plain, a form or no Content-Type at all
    cross-site without a CORS preflight, with any Basic credentials it has cached; application/json it
    cannot send without asking first."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise errors.WrongContentType(f"Content-Type {JSON} is required; the request has none")
    if content_type.split(";")[0].strip().lower() != JSON:
        raise errors.WrongContentType(f"Content-Type must be {JSON}, not {content_type!r}")


async def read_json(request: Request, max_bytes: int) -> Any:
    require_json(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise errors.TooLarge(f"body is {declared} bytes; the limit is {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise errors.TooLarge(f"body is over {max_bytes} bytes; the limit is {max_bytes} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.BadJson(f"body is not valid JSON: {exc}") from None


async def _store(state: StateDep, kind: Kind, items: list[Any]) -> IngestResult:
    settings = state.settings
    if len(items) > settings.MAX_BATCH:
        raise errors.TooLarge(f"batch has {len(items)} items; the limit is {settings.MAX_BATCH}")
    state.committer.admit(len(items))
    good, bad = validate(settings, kind, items)
    if not good:
        raise errors.Invalid([item.model_dump() for item in bad])
    flags = await state.committer.submit([(kind, key, record) for key, record in good])
    if REFUSED in flags:
        raise _symbol_cap(state, good)
    accepted = account(kind, [key for key, _ in good], flags)
    return IngestResult(accepted=accepted, duplicates=len(flags) - accepted, rejected=bad)


def _symbol_cap(state: StateDep, good: list[tuple[str, dict[str, Any]]]) -> errors.Invalid:
    symbols = sorted({record["symbol"] for _, record in good})
    metrics.INGEST_ITEMS.labels(TICK.name, "refused").inc(len(good))
    log.warning("ingest.symbol_cap", symbols=symbols[:20], max_symbols=state.settings.MAX_SYMBOLS)
    shown = ", ".join(symbols[:20]) + (f" and {len(symbols) - 20} more" if len(symbols) > 20 else "")
    return errors.Invalid.field(
        "symbol",
        f"MAX_SYMBOLS={state.settings.MAX_SYMBOLS} symbols are known already, so no new symbol is "
        f"taken; nothing of this request was stored (its symbols: {shown}). Known symbols keep working; "
        f"one is forgotten after SYMBOL_IDLE_S={state.settings.SYMBOL_IDLE_S} s without a tick.",
    )


@router.post("/tick", response_model=IngestResult, responses=ERRORS, openapi_extra=_body_schema(_schema(TICK)))
async def ingest_tick(request: Request, state: StateDep) -> IngestResult:
    """One tick. A duplicate `event_id` is acknowledged (`duplicates: 1`) and not processed again."""
    item = await read_json(request, state.settings.MAX_BODY_BYTES)
    if not isinstance(item, dict):
        raise errors.Invalid([{"index": 0, "errors": [{"field": "body", "message": "must be an object"}]}])
    return await _store(state, TICK, [item])


@router.post(
    "/ticks",
    response_model=IngestResult,
    responses=ERRORS,
    openapi_extra=_body_schema({"type": "array", "items": _schema(TICK), "minItems": 1}),
)
async def ingest_ticks(request: Request, state: StateDep) -> IngestResult:
    """A JSON array of ticks. Valid items are stored even when others are invalid; those are
    listed in `rejected` by index. 422 only when no item is valid."""
    items = await read_json(request, state.settings.MAX_BODY_BYTES)
    if not isinstance(items, list) or not items:
        raise errors.Invalid.field("body", "must be a non-empty JSON array of ticks")
    return await _store(state, TICK, items)


def _rttm_route(path: str, kind: Kind, what: str) -> None:
    schema = _schema(kind)
    body = {"oneOf": [schema, {"type": "array", "items": schema, "minItems": 1}]}

    async def ingest(request: Request, state: StateDep) -> IngestResult:
        payload = await read_json(request, state.settings.MAX_BODY_BYTES)
        items = payload if isinstance(payload, list) else [payload]
        if not items:
            raise errors.Invalid.field("body", "must be an object or a non-empty array")
        return await _store(state, kind, items)

    ingest.__doc__ = f"{what}: one object or an array. Valid items are stored even when others are not."
    router.add_api_route(
        path,
        ingest,
        methods=["POST"],
        response_model=IngestResult,
        responses=ERRORS,
        openapi_extra=_body_schema(body),
        name=f"ingest_{kind.name}",
        summary=f"Ingest {what}",
    )


_rttm_route("/trade-events", TRADE, "Trade lifecycle events")
_rttm_route("/queue-metrics", QUEUE, "Queue metrics (produced vs consumed offsets)")
_rttm_route("/dlq-events", DLQ, "Dead-letter events")
_rttm_route("/error-events", ERROR, "Error events")
_rttm_route("/log-events", LOG, "Parsed log events")


def endpoints() -> dict[str, Route]:
    """Path -> (credential check, endpoint) of every ingest route, for the fast path (fastpath.py) that skips
    FastAPI's routing."""
    return {route.path: (check_basic, route.endpoint) for route in router.routes if isinstance(route, APIRoute)}
