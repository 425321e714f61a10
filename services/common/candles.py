"""Candles as calc-a keeps them (a Redis hash per symbol, interval and bucket), as the flusher stores them
(md_candles), and as served (`contract.Candle`): `{t, open, high, low, close, volume, count}`, t the bucket
start in epoch ms."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from services.common.contract import Candle
from services.common.db import md_candles


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def candle_from_hash(bucket_ms: int, fields: dict[Any, Any]) -> Candle | None:
    """`{t, open, high, low, close, volume, count}` from the hash fields o/h/l/c/v/n."""
    f = {_text(k): _text(v) for k, v in fields.items()}
    if "o" not in f:
        return None
    return {
        "t": bucket_ms,
        "open": float(f["o"]),
        "high": float(f["h"]),
        "low": float(f["l"]),
        "close": float(f["c"]),
        "volume": float(f["v"]),
        "count": int(float(f["n"])),
    }


def candle_from_row(row: Any) -> Candle:
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


def merge_newest(live: list[Candle], stored: list[Candle], limit: int) -> list[Candle]:
    """The newest `limit` candles of both, oldest first; for a bucket in both, the live one (Redis) wins.

    The newest `limit` of the union are among the newest `limit` of each side, so each side needs no more.
    """
    by_bucket = {c["t"]: c for c in stored}
    by_bucket.update((c["t"], c) for c in live)
    return [by_bucket[t] for t in sorted(by_bucket)[-limit:]]
