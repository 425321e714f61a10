"""Read API for dashboards: symbols, latest view W, history (Postgres) and candles (Redis, then Postgres)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import orjson
import sqlalchemy.exc
from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy import Select, select

from services.common.candles import INTERVALS_MS, candle_from_hash, merge_newest
from services.common.contract import (
    Candle,
    Candles,
    History,
    HistoryTick,
    Interval,
    Session,
    Snapshot,
    SymbolList,
    SymbolSnapshot,
    View,
)
from services.common.db import md_candles, md_ticks
from services.common.logging import get_logger
from services.common.schemas import SYMBOL_PATTERN, ErrorBody
from services.orchestrator_api import errors
from services.orchestrator_api.defaults import STORED_CANDLES_TIMEOUT_S
from services.orchestrator_api.errors import BAD_PARAMETER
from services.orchestrator_api.security import API_KEY_REFUSED, check_api_key
from services.orchestrator_api.state import StateDep

router = APIRouter(
    prefix="/symbols",
    tags=["read"],
    dependencies=[Depends(check_api_key)],
    responses={**API_KEY_REFUSED, **BAD_PARAMETER},
)

log = get_logger(__name__)
PARTIAL_HEADER = "X-Candles-Partial"  # set when Postgres could not be asked: only the Redis candles are in

UNKNOWN: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "Unknown symbol"}}
POSTGRES_NEEDED: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "Postgres is unavailable and Redis does not know the symbol"}
}
SymbolPath = Annotated[str, Path(pattern=SYMBOL_PATTERN, description="Symbol", examples=["BTCUSDT"])]


def stored_json(raw: bytes) -> Response:
    """JSON a worker built and stored (view W, the RTTM snapshot), served as it is: parsing and validating
    it again per read would cost more than the read. The `response_model` still documents it."""
    return Response(raw, media_type="application/json")


async def _require_symbol(state: StateDep, symbol: str) -> None:
    if await state.redis.zscore(state.keys.symbols, symbol) is None:
        raise errors.NotFound(f"unknown symbol {symbol!r}")


@router.get("", response_model=SymbolList)
async def list_symbols(state: StateDep) -> SymbolList:
    """Known symbols (a tick within SYMBOL_IDLE_S), with last price and time (null until the first view)."""
    symbols = sorted(s.decode() for s in await state.redis.zrange(state.keys.symbols, 0, -1))
    async with state.redis.pipeline(transaction=False) as pipe:
        for symbol in symbols:
            pipe.hget(state.keys.view(symbol), "view")
        views = await pipe.execute()
    out: SymbolList = {"symbols": []}
    for symbol, raw in zip(symbols, views, strict=True):
        view = orjson.loads(raw) if raw else {}
        out["symbols"].append(
            {
                "symbol": symbol,
                "price": view.get("price"),
                "ts": view.get("ts"),
                "version": view.get("version"),
                "tick_size": state.settings.tick_size(symbol),
            }
        )
    return out


DAY_MS = 86_400_000
SESSION_INTERVAL: Interval = "15m"  # the coarsest candles: Redis holds the most days of them


@router.get("/views", response_model=Snapshot)
async def list_views(state: StateDep) -> Response:
    """Every known symbol's latest view W, with its session (the UTC day of its latest tick and the day's first
    price, from the day's first candle), in one answer: a dashboard starts, and reloads after a `reset`, with
    this instead of one GET /symbols/{id} per symbol. Three Redis round trips whatever the number of symbols."""
    symbols = sorted(s.decode() for s in await state.redis.zrange(state.keys.symbols, 0, -1))
    async with state.redis.pipeline(transaction=False) as pipe:
        for symbol in symbols:
            pipe.hget(state.keys.view(symbol), "view")
        views: list[View | None] = [orjson.loads(raw) if raw else None for raw in await pipe.execute()]
    starts = [view["ts"] // DAY_MS * DAY_MS if view else None for view in views]
    async with state.redis.pipeline(transaction=False) as pipe:
        for symbol, start in zip(symbols, starts, strict=True):
            if start is not None:
                pipe.zrangebyscore(state.keys.candle_index(symbol, SESSION_INTERVAL), start, "+inf", start=0, num=1)
        firsts = iter(await pipe.execute())
    buckets = [_first(next(firsts)) if start is not None else None for start in starts]
    async with state.redis.pipeline(transaction=False) as pipe:
        for symbol, bucket in zip(symbols, buckets, strict=True):
            if bucket is not None:
                pipe.hget(state.keys.candle(symbol, SESSION_INTERVAL, bucket), "o")
        opens = iter(await pipe.execute())
    out: Snapshot = {"symbols": []}
    for symbol, view, start, bucket in zip(symbols, views, starts, buckets, strict=True):
        entry: SymbolSnapshot = {
            "symbol": symbol,
            "tick_size": state.settings.tick_size(symbol),
            "view": view,
            "session": None,
        }
        if start is not None:
            raw_open = next(opens) if bucket is not None else None
            session: Session = {"start": start, "open": float(raw_open) if raw_open is not None else None}
            entry["session"] = session
        out["symbols"].append(entry)
    return Response(orjson.dumps(out), media_type="application/json")  # views as calc-b built them, unvalidated


def _first(members: list[bytes]) -> int | None:
    return int(members[0]) if members else None


@router.get("/{symbol}", response_model=View, responses=UNKNOWN)
async def get_view(symbol: SymbolPath, state: StateDep) -> Response:
    """Latest view W of a symbol."""
    raw = await state.redis.hget(state.keys.view(symbol), "view")
    if raw is None:
        raise errors.NotFound(f"unknown symbol {symbol!r}")
    return stored_json(raw)  # as calc-b's build_view built it


@router.get("/{symbol}/history", response_model=History, responses=UNKNOWN)
async def history(
    symbol: SymbolPath,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, description="Rows, newest first; capped at HISTORY_LIMIT_MAX")] = 1000,
) -> History:
    """Recent ticks from Postgres, newest first (by event time, then event_id)."""
    await _require_symbol(state, symbol)
    limit = min(limit, state.settings.HISTORY_LIMIT_MAX)
    query = (
        select(md_ticks.c.event_id, md_ticks.c.price, md_ticks.c.volume, md_ticks.c.source, md_ticks.c.ts)
        .where(md_ticks.c.symbol == symbol)
        .order_by(md_ticks.c.ts.desc(), md_ticks.c.event_id.desc())
        .limit(limit)
    )
    async with state.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    ticks: list[HistoryTick] = [
        {
            "event_id": r.event_id,
            "price": r.price,
            "volume": r.volume,
            "source": r.source,
            "ts": int(r.ts.timestamp() * 1000),
        }
        for r in rows
    ]
    return {"symbol": symbol, "limit": limit, "ticks": ticks}


@router.get("/{symbol}/candles", response_model=Candles, responses={**UNKNOWN, **POSTGRES_NEEDED})
async def candles(
    symbol: SymbolPath,
    state: StateDep,
    response: Response,
    interval: Interval = "1m",
    limit: Annotated[int, Query(ge=1, description="Candles, oldest first; capped at CANDLES_LIMIT_MAX")] = 500,
) -> Candles:
    """OHLCV candles aligned to UTC boundaries: the newest `limit`, from Redis (calc-a keeps the latest
    CANDLES_KEEP) and, older or evicted ones, from Postgres (kept CANDLE_RETENTION_DAYS). With Postgres
    unavailable, the Redis part alone, marked by the header `X-Candles-Partial`."""
    limit = min(limit, state.settings.CANDLES_LIMIT_MAX)
    known = await state.redis.zscore(state.keys.symbols, symbol) is not None
    live = await _live_candles(state, symbol, interval, limit)
    try:
        with anyio.fail_after(STORED_CANDLES_TIMEOUT_S):
            async with state.engine.connect() as conn:
                rows = (await conn.execute(stored_candles_query(symbol, interval, limit))).all()
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, TimeoutError) as exc:
        if not known:
            detail = "Postgres is unavailable and Redis does not know this symbol"
            raise errors.PostgresNeeded(detail, 5) from exc
        log.warning("api.candles_partial", symbol=symbol, error=type(exc).__name__)
        response.headers[PARTIAL_HEADER] = "postgres-unavailable"
        rows = []
    if not known and not rows:
        raise errors.NotFound(f"unknown symbol {symbol!r}")
    out = merge_newest(live, [candle_from_row(r) for r in rows], limit)
    return {
        "symbol": symbol,
        "interval": interval,
        "interval_ms": INTERVALS_MS[interval],
        "tick_size": state.settings.tick_size(symbol),
        "candles": out,
    }


async def _live_candles(state: StateDep, symbol: str, interval: str, limit: int) -> list[Candle]:
    """The newest `limit` candles calc-a holds in Redis, oldest first."""
    buckets = [int(b) for b in await state.redis.zrevrange(state.keys.candle_index(symbol, interval), 0, limit - 1)]
    buckets.reverse()
    async with state.redis.pipeline(transaction=False) as pipe:
        for bucket in buckets:
            pipe.hgetall(state.keys.candle(symbol, interval, bucket))
        hashes = await pipe.execute()
    return [c for b, h in zip(buckets, hashes, strict=True) if (c := candle_from_hash(b, h))]


def candle_from_row(row: Any) -> dict[str, Any]:
    """The same shape from a row of `stored_candles_query`."""
    return {
        "t": round(row.bucket_start.timestamp() * 1000),
        "open": row.open,
        "high": row.high,
        "low": row.low,
        "close": row.close,
        "volume": row.volume,
        "count": row.n,  # labelled: `count` is also a method of a row, as of any sequence
    }


def stored_candles_query(symbol: str, interval: str, limit: int) -> Select[Any]:
    """The newest `limit` candles of a symbol and interval in Postgres, newest first."""
    c = md_candles.c
    return (
        select(c.bucket_start, c.open, c.high, c.low, c.close, c.volume, c["count"].label("n"))
        .where(c.symbol == symbol, c.interval == interval)
        .order_by(c.bucket_start.desc())
        .limit(limit)
    )
