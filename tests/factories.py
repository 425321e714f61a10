"""Keyword-only factories for test data."""

from __future__ import annotations

import time
import uuid
from typing import Any


def make_tick(
    *,
    symbol: str = "BTCUSDT",
    price: float = 100.0,
    volume: float = 1.0,
    source: str = "test",
    ts: Any = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "price": price,
        "volume": volume,
        "source": source,
        "ts": int(time.time() * 1000) if ts is None else ts,
        "event_id": event_id or uuid.uuid4().hex,
    }
