"""`SYMBOL=NUMBER,...` settings (TICK_SIZES, the feeder's FEEDER_VOLATILITY), parsed one way."""

from __future__ import annotations

import math
from collections.abc import Callable


def parse_symbol_values(text: str, accept: Callable[[float], bool], shape: str) -> dict[str, float]:
    """Symbol -> number from `A=1,B=2` (blank entries ignored); an entry that is not `shape` or whose number
    `accept` refuses raises ValueError naming it and `shape`."""
    out: dict[str, float] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        symbol, sep, number = (part.strip() for part in entry.partition("="))
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not (sep and symbol and math.isfinite(value) and accept(value)):
            raise ValueError(f"{entry[:64]!r} is not {shape}")
        out[symbol] = value
    return out
