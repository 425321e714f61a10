"""Tick sizes: the smallest price step of each symbol, which sets how its prices are shown (decimals and
minimum move of the dashboard's price axis) and the grid the feeder's prices sit on.

The demo symbols have theirs here; `TICK_SIZES` (settings) adds others or overrides these, and any other
symbol gets `DEFAULT_TICK_SIZE`.
"""

from __future__ import annotations

import math

DEMO_TICK_SIZES: dict[str, float] = {
    "BTCUSDT": 0.01,
    "ETHUSDT": 0.01,
    "SOLUSDT": 0.001,
    "XAUUSD": 0.01,
    "EURUSD": 0.00001,  # a tenth of a pip: FX quotes carry five decimals
}
DEFAULT_TICK_SIZE = 0.01  # cents: what most listed instruments trade in


def parse_tick_sizes(text: str) -> dict[str, float]:
    """`SYMBOL=SIZE,...` (blank entries ignored); a bad entry raises ValueError naming it."""
    out: dict[str, float] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        symbol, sep, size = (part.strip() for part in entry.partition("="))
        try:
            value = float(size)
        except ValueError:
            value = math.nan
        if not sep or not symbol or not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{entry[:64]!r} is not SYMBOL=SIZE with a size > 0")
        out[symbol] = value
    return out


def decimals(tick_size: float) -> int:
    """Decimals that show every multiple of `tick_size` (0.01 -> 2, 0.00001 -> 5, 0.5 -> 1, 5 -> 0)."""
    for places in range(13):
        if abs(round(tick_size, places) - tick_size) < tick_size * 1e-9:
            return places
    return 12
