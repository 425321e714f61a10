"""calc-b: merge calc-a's state with the batch into the final view W of a symbol."""

from __future__ import annotations

import math

from services.common.contract import View
from services.common.schemas import TickRecord
from services.consumers.windows import SymbolState


def _change(now: float, before: float | None) -> tuple[float | None, float | None]:
    if before is None:
        return None, None
    delta = now - before
    return delta, (delta / before * 100.0 if before else None)


def build_view(state: SymbolState, batch: list[TickRecord], now_ms: float) -> View:
    """View W (`contract.View`). `latency_ms` is ingest-to-view for the oldest tick of this batch (the worst case)."""
    last = state.last_ticks[-1]
    previous = state.last_ticks[-2].price if len(state.last_ticks) > 1 else None
    change, change_pct = _change(last.price, previous)
    candle_1m = state.candles.get("1m")
    change_1m, change_1m_pct = _change(last.price, candle_1m["open"] if candle_1m else None)
    prices = [t.price for t in state.last_ticks]
    return {
        "symbol": state.symbol,
        "version": state.version,
        "price": last.price,
        "volume": last.volume,
        "ts": last.ts,
        "event_id": last.event_id,
        "change": change,
        "change_pct": change_pct,
        "change_1m": change_1m,
        "change_1m_pct": change_1m_pct,
        "sma_10": math.fsum(prices) / len(prices),
        "volume_1m": state.volume_1m,
        "vwap_1m": state.pv_1m / state.volume_1m if state.volume_1m > 0 else None,
        "high_1m": state.high_1m,
        "low_1m": state.low_1m,
        "trades_1m": state.trades_1m,
        "last_ticks": [
            {"event_id": t.event_id, "price": t.price, "volume": t.volume, "ts": t.ts} for t in state.last_ticks
        ],
        "candles": state.candles,
        "latency_ms": round(now_ms - min(t["received_at"] for t in batch), 3),
        "computed_at": round(now_ms, 3),
    }
