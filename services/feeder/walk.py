"""Seeded tick generation: a geometric random walk per symbol (pure, no I/O).

Each symbol has its own `random.Random`, seeded from the run seed and the
symbol name, so a symbol's price/volume sequence depends only on the seed:
adding a symbol to `SYMBOLS` does not change the others. Symbols take turns
(round-robin), so each gets TPS / len(symbols) ticks per second.

Price step, in log space, with a weak pull back to the starting price so a
long run stays in a believable range:

    log p += -REVERSION * (log p - log p0) + sigma * N(0, 1)

and the emitted price is rounded to the symbol's tick size (never below one
tick). Volumes are lognormal around the symbol's typical trade size.

`event_id` is a fresh uuid4 and deliberately NOT derived from the seed: two
runs with the same seed must not be 100% duplicates of each other.
"""

from __future__ import annotations

import itertools
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.feeder.defaults import REVERSION, VOLUME_SIGMA


@dataclass(frozen=True)
class SymbolProfile:
    start_price: float
    sigma: float  # standard deviation of one tick's log return
    tick_size: float
    volume_scale: float  # median trade size
    volume_decimals: int

    @property
    def price_decimals(self) -> int:
        return max(0, -math.floor(math.log10(self.tick_size) + 1e-9))


PROFILES: dict[str, SymbolProfile] = {
    "BTCUSDT": SymbolProfile(65_000.0, 2e-4, 0.01, 0.05, 5),
    "ETHUSDT": SymbolProfile(3_200.0, 2.5e-4, 0.01, 0.5, 4),
    "SOLUSDT": SymbolProfile(150.0, 4e-4, 0.001, 10.0, 2),
    "XAUUSD": SymbolProfile(2_400.0, 1e-4, 0.01, 2.0, 2),
    "EURUSD": SymbolProfile(1.08, 5e-5, 0.00001, 100_000.0, 0),
}
DEFAULT_PROFILE = SymbolProfile(100.0, 3e-4, 0.01, 100.0, 0)


def profile_for(symbol: str) -> SymbolProfile:
    return PROFILES.get(symbol, DEFAULT_PROFILE)


class SymbolWalk:
    """One symbol's price path and trade sizes."""

    def __init__(self, symbol: str, seed: int, profile: SymbolProfile | None = None) -> None:
        self.symbol = symbol
        self.profile = profile or profile_for(symbol)
        # str seeds hash with SHA-512 inside `random`: stable across processes and PYTHONHASHSEED.
        self._rng = random.Random(f"{seed}:{symbol}")
        self._log_p0 = math.log(self.profile.start_price)
        self._log_p = self._log_p0

    def step(self) -> tuple[float, float]:
        """The next (price, volume)."""
        p = self.profile
        self._log_p += -REVERSION * (self._log_p - self._log_p0) + p.sigma * self._rng.gauss(0.0, 1.0)
        ticks = max(1, round(math.exp(self._log_p) / p.tick_size))
        price = round(ticks * p.tick_size, p.price_decimals)
        volume = round(p.volume_scale * self._rng.lognormvariate(0.0, VOLUME_SIGMA), p.volume_decimals)
        return price, volume


_RUN = uuid.uuid4().hex  # one random id per process, then a counter: unique, and far cheaper than uuid4 per tick
_COUNTER = itertools.count()


def new_event_id() -> str:
    return f"{_RUN}-{next(_COUNTER)}"


class TickGenerator:
    """Ticks for a list of symbols, in round-robin order."""

    def __init__(
        self,
        symbols: list[str],
        *,
        seed: int,
        source: str,
        event_id: Callable[[], str] = new_event_id,
    ) -> None:
        if not symbols:
            raise ValueError("at least one symbol is needed")
        self.seed = seed
        self.source = source
        self._walks = [SymbolWalk(symbol, seed) for symbol in symbols]
        self._event_id = event_id
        self._next = 0

    def next_tick(self, ts_ms: int) -> dict[str, Any]:
        walk = self._walks[self._next]
        self._next = (self._next + 1) % len(self._walks)
        price, volume = walk.step()
        return {
            "symbol": walk.symbol,
            "price": price,
            "volume": volume,
            "source": self.source,
            "ts": ts_ms,
            "event_id": self._event_id(),
        }
