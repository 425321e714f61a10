"""Tick sizes: the smallest price step of each symbol, which sets how its prices are shown (decimals and
minimum move of the dashboard's price axis) and the grid the feeder's prices sit on.

The demo symbols have theirs here; `TICK_SIZES` (settings) adds others or overrides these, and any other
symbol gets `DEFAULT_TICK_SIZE`.
"""

from __future__ import annotations

from services.common.symbol_values import parse_symbol_values

DEMO_TICK_SIZES: dict[str, float] = {
    "BTCUSDT": 0.01,
    "ETHUSDT": 0.01,
    "SOLUSDT": 0.001,
    "XAUUSD": 0.01,
    "EURUSD": 0.00001,  # a tenth of a pip: FX quotes carry five decimals
}
DEFAULT_TICK_SIZE = 0.01  # cents: what most listed instruments trade in


def parse_tick_sizes(text: str) -> dict[str, float]:
    """`SYMBOL=SIZE,...`; a bad entry raises ValueError naming it."""
    return parse_symbol_values(text, lambda size: size > 0, "SYMBOL=SIZE with a size > 0")


def decimals(tick_size: float) -> int:
    """Decimals that show every multiple of `tick_size` (0.01 -> 2, 0.00001 -> 5, 0.5 -> 1, 5 -> 0)."""
    for places in range(13):
        if abs(round(tick_size, places) - tick_size) < tick_size * 1e-9:
            return places
    return 12
