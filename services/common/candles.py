"""Candles as stored by calc-a (a Redis hash per symbol, interval and bucket) and as served."""

from __future__ import annotations

from typing import Any


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def candle_from_hash(bucket_ms: int, fields: dict[Any, Any]) -> dict[str, Any] | None:
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
