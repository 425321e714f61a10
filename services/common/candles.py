"""Candles: their intervals, the hash calc-a keeps per symbol, interval and bucket (`consumers/windows.lua`),
and the shape served (`contract.Candle`): `{t, open, high, low, close, volume, count}`, t the bucket start in
epoch ms. The flusher rolls them up into md_candles (`flusher/candle_store.py`); the read API merges both."""

from __future__ import annotations

from typing import Any

from services.common.contract import Candle, Interval

# Every interval, finest first; the same as the contract's `Interval` (tests/contract/test_envelopes.py).
INTERVALS_MS: dict[Interval, int] = {"1m": 60_000, "5m": 300_000, "15m": 900_000}


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


def merge_newest(live: list[Candle], stored: list[Candle], limit: int) -> list[Candle]:
    """The newest `limit` candles of both, oldest first; for a bucket in both, the live one (Redis) wins.

    The newest `limit` of the union are among the newest `limit` of each side, so each side needs no more.
    """
    by_bucket = {c["t"]: c for c in stored}
    by_bucket.update((c["t"], c) for c in live)
    return [by_bucket[t] for t in sorted(by_bucket)[-limit:]]
