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


def stored_batch(
    client: Any, settings: Any, batch_id: str, ticks: list[dict[str, Any]], **others: list[dict[str, Any]]
) -> str:
    """What a group commit leaves for a worker: the batch hash (marks of steps already applied kept) and its
    symbols known; returns the batch id."""
    import orjson

    from services.common.keys import Keys

    keys = Keys(settings.KEY_PREFIX)
    from services.common.keys import BATCH_TTL_S

    items = {"tick": ticks, **others}
    client.hset(keys.batch(batch_id), mapping={"items": orjson.dumps(items), "n": sum(map(len, items.values()))})
    client.expire(keys.batch(batch_id), BATCH_TTL_S)
    if ticks:
        client.zadd(keys.symbols, {t["symbol"]: time.time() * 1000 for t in ticks})
    return batch_id
