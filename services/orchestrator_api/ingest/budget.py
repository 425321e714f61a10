"""Redis memory now, and what it levels off at: `keys.project` at the rate ingest sees.

The rate is measured here from the shared accepted counters (so it covers
every API process), between this process's own looks at them over the last
RATE_WINDOW_S; the first look has no rate yet and projects at zero traffic.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from services.common.keys import TRADE_EVENTS_PER_TRADE, Rates, project
from services.common.settings import Settings
from services.orchestrator_api.defaults import RATE_WINDOW_S, SAMPLES_KEPT


class RateMeter:
    def __init__(self) -> None:
        self._samples: deque[tuple[float, dict[str, int]]] = deque(maxlen=SAMPLES_KEPT)

    def rates(self, accepted: dict[str, int], symbols: int, now: float | None = None) -> Rates:
        now = time.monotonic() if now is None else now
        while self._samples and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()
        self._samples.append((now, dict(accepted)))
        then, before = self._samples[0]
        elapsed = now - then
        if elapsed <= 0:
            return Rates(ticks=0.0, symbols=symbols)

        def per_s(kinds: set[str] | None) -> float:
            grown = sum(v - before.get(k, 0) for k, v in accepted.items() if kinds is None or k in kinds)
            return max(0.0, grown / elapsed)

        ticks = per_s({"tick"})
        return Rates(
            ticks=ticks,
            events=per_s(None) - ticks,
            trades=per_s({"trade"}) / TRADE_EVENTS_PER_TRADE,
            symbols=symbols,
        )


async def redis_report(client: Any, settings: Settings, rates: Rates) -> dict[str, Any]:
    info = await client.info("memory")
    families = project(settings, rates)
    return {
        "used_memory_bytes": int(info.get("used_memory", 0)),
        "maxmemory_bytes": int(info.get("maxmemory", 0)),
        "maxmemory_policy": info.get("maxmemory_policy"),
        "rates": {
            "ticks_per_s": round(rates.ticks, 2),
            "events_per_s": round(rates.events, 2),
            "trades_per_s": round(rates.trades, 2),
            "symbols": rates.symbols,
        },
        "projected_bytes": sum(families.values()),
        "projected_by_family": families,
    }
