"""Seeded tick generation: a mean-reverting random walk per symbol in event time (pure, no I/O).

Each symbol has its own `random.Random`, seeded from the run seed and the
symbol name, so a symbol's price/volume sequence depends only on the seed:
adding a symbol to `SYMBOLS` does not change the others. Symbols take turns
(round-robin), so each gets TPS / len(symbols) ticks per second.

Volatility is per unit of time, not per tick: each symbol has an annualised
volatility (`vol`, as traders quote it), and the log price is an
Ornstein-Uhlenbeck process in the ticks' own time `ts`, stepped exactly over
the time `dt` since the symbol's previous tick:

    x = log p - log p0
    x <- x * exp(-k dt) + sigma * sqrt((1 - exp(-2 k dt)) / (2 k)) * N(0, 1)

with sigma = vol / sqrt(seconds per year) and k = ln 2 / REVERSION_HALF_LIFE_S
(a weak pull back to the start price, so a long run stays believable). The
step is exact for any dt, so a minute's move has the same spread at 10 or 400
ticks/s: candles look the same whatever the rate. Ticks with the same `ts`
share one price move. The emitted price is rounded to the symbol's tick size
(common/tick_sizes.py; never below one tick). Volumes are lognormal around
the symbol's typical trade size.

`event_id` is a fresh uuid4 and deliberately NOT derived from the seed: two
runs with the same seed must not be 100% duplicates of each other.
"""

from __future__ import annotations

import itertools
import math
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from services.common.tick_sizes import DEFAULT_TICK_SIZE, DEMO_TICK_SIZES, decimals
from services.feeder.defaults import REVERSION_HALF_LIFE_S, SECONDS_PER_YEAR, VOLUME_SIGMA


@dataclass(frozen=True)
class SymbolProfile:
    start_price: float
    vol: float  # annualised volatility of the log price (0.6: 60% a year)
    tick_size: float
    volume_scale: float  # median trade size
    volume_decimals: int

    @property
    def price_decimals(self) -> int:
        return decimals(self.tick_size)

    @property
    def sigma_per_s(self) -> float:
        """Standard deviation of a second's log return (before the pull back)."""
        return self.vol / math.sqrt(SECONDS_PER_YEAR)


def _profile(symbol: str, start_price: float, vol: float, volume_scale: float, volume_decimals: int) -> SymbolProfile:
    return SymbolProfile(start_price, vol, DEMO_TICK_SIZES[symbol], volume_scale, volume_decimals)


# Volatilities near what these markets have shown in recent years.
PROFILES: dict[str, SymbolProfile] = {
    "BTCUSDT": _profile("BTCUSDT", 65_000.0, 0.60, 0.05, 5),
    "ETHUSDT": _profile("ETHUSDT", 3_200.0, 0.75, 0.5, 4),
    "SOLUSDT": _profile("SOLUSDT", 150.0, 0.95, 10.0, 2),
    "XAUUSD": _profile("XAUUSD", 2_400.0, 0.15, 2.0, 2),
    "EURUSD": _profile("EURUSD", 1.08, 0.07, 100_000.0, 0),
}
DEFAULT_PROFILE = SymbolProfile(100.0, 0.30, DEFAULT_TICK_SIZE, 100.0, 0)  # a typical listed stock


def profile_for(symbol: str, vol: float | None = None) -> SymbolProfile:
    """The symbol's profile, with `vol` (FEEDER_VOLATILITY) over its own volatility when given."""
    profile = PROFILES.get(symbol, DEFAULT_PROFILE)
    return profile if vol is None else replace(profile, vol=vol)


class SymbolWalk:
    """One symbol's price path and trade sizes."""

    def __init__(self, symbol: str, seed: int, profile: SymbolProfile | None = None) -> None:
        self.symbol = symbol
        self.profile = profile or profile_for(symbol)
        # str seeds hash with SHA-512 inside `random`: stable across processes and PYTHONHASHSEED.
        self._rng = random.Random(f"{seed}:{symbol}")
        self._log_p0 = math.log(self.profile.start_price)
        self._x = 0.0  # log p - log p0
        self._k = math.log(2) / REVERSION_HALF_LIFE_S
        self._last_ts_ms: int | None = None

    def step(self, ts_ms: int) -> tuple[float, float]:
        """The (price, volume) of a tick at `ts_ms` (epoch ms; the first tick sits at the start price)."""
        p = self.profile
        last = self._last_ts_ms
        if last is None or ts_ms > last:  # a tick older than the latest (or the first) moves nothing
            self._last_ts_ms = ts_ms
        dt = 0.0 if last is None else max(0, ts_ms - last) / 1000.0
        if dt > 0:
            decay = math.exp(-self._k * dt)
            spread = p.sigma_per_s * math.sqrt(-math.expm1(-2 * self._k * dt) / (2 * self._k))
            self._x = self._x * decay + spread * self._rng.gauss(0.0, 1.0)
        ticks = max(1, round(math.exp(self._log_p0 + self._x) / p.tick_size))
        price = round(ticks * p.tick_size, p.price_decimals)
        volume = round(p.volume_scale * self._rng.lognormvariate(0.0, VOLUME_SIGMA), p.volume_decimals)
        return price, volume


_RUN = uuid.uuid4().hex  # one random id per process, then a counter: unique, and far cheaper than uuid4 per tick
_COUNTER = itertools.count()


def new_event_id() -> str:
    return f"{_RUN}-{next(_COUNTER)}"


class TickGenerator:
    """Ticks for a list of symbols, in round-robin order; `volatility` maps a symbol to its annualised
    volatility over its profile's."""

    def __init__(
        self,
        symbols: list[str],
        *,
        seed: int,
        source: str,
        event_id: Callable[[], str] = new_event_id,
        volatility: Mapping[str, float] | None = None,
    ) -> None:
        if not symbols:
            raise ValueError("at least one symbol is needed")
        self.seed = seed
        self.source = source
        vols = volatility or {}
        self._walks = [SymbolWalk(s, seed, profile_for(s, vols.get(s))) for s in symbols]
        self._event_id = event_id
        self._next = 0

    def next_tick(self, ts_ms: int) -> dict[str, Any]:
        walk = self._walks[self._next]
        self._next = (self._next + 1) % len(self._walks)
        price, volume = walk.step(ts_ms)
        return {
            "symbol": walk.symbol,
            "price": price,
            "volume": volume,
            "source": self.source,
            "ts": ts_ms,
            "event_id": self._event_id(),
        }
