"""The seeded random walk: reproducible, valid, unique event_ids, and volatility per unit of time."""

from __future__ import annotations

import math
import re
import statistics
from itertools import count

import pytest

from services.common.schemas import SYMBOL_PATTERN, TickIn
from services.feeder.settings import FeederSettings
from services.feeder.walk import DEFAULT_PROFILE, PROFILES, SymbolWalk, TickGenerator, profile_for

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XAUUSD", "EURUSD", "ACME"]
TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def prices_and_volumes(seed: int, n: int, symbols: list[str] = SYMBOLS) -> list[tuple[str, float, float]]:
    """`n` ticks, a round of every symbol each 100 ms (so a symbol's ticks have the same times whatever the
    other symbols)."""
    gen = TickGenerator(symbols, seed=seed, source="test")
    ticks = (gen.next_tick(TS + (i // len(symbols)) * 100) for i in range(n))
    return [(t["symbol"], t["price"], t["volume"]) for t in ticks]


def test_same_seed_gives_the_same_prices_and_volumes() -> None:
    assert prices_and_volumes(42, 5_000) == prices_and_volumes(42, 5_000)


def test_different_seeds_give_different_prices() -> None:
    a = prices_and_volumes(1, 1_000)
    b = prices_and_volumes(2, 1_000)
    same = sum(1 for x, y in zip(a, b, strict=True) if x == y)
    assert same < 10


def test_a_symbol_sequence_does_not_depend_on_the_other_symbols() -> None:
    alone = [p for s, p, _ in prices_and_volumes(7, 300, ["ETHUSDT"])]
    mixed = [p for s, p, _ in prices_and_volumes(7, 900, ["BTCUSDT", "ETHUSDT", "ACME"]) if s == "ETHUSDT"]
    assert alone == mixed


def test_symbols_take_turns() -> None:
    symbols = [s for s, _, _ in prices_and_volumes(3, 12, ["A", "B", "C"])]
    assert symbols == ["A", "B", "C"] * 4


def test_same_seed_gives_fresh_event_ids() -> None:
    a = TickGenerator(["BTCUSDT"], seed=5, source="test").next_tick(TS)
    b = TickGenerator(["BTCUSDT"], seed=5, source="test").next_tick(TS)
    assert (a["price"], a["volume"]) == (b["price"], b["volume"])
    assert a["event_id"] != b["event_id"]


def test_event_ids_are_unique_across_100k_ticks() -> None:
    gen = TickGenerator(SYMBOLS, seed=11, source="test")
    ids = {gen.next_tick(TS)["event_id"] for _ in range(100_000)}
    assert len(ids) == 100_000


def test_event_id_factory_is_used() -> None:
    numbers = count()
    gen = TickGenerator(["BTCUSDT"], seed=1, source="test", event_id=lambda: f"id-{next(numbers)}")
    assert [gen.next_tick(TS)["event_id"] for _ in range(3)] == ["id-0", "id-1", "id-2"]


def test_long_walk_keeps_prices_positive_volumes_non_negative_and_on_the_tick_grid() -> None:
    for symbol in SYMBOLS:
        walk = SymbolWalk(symbol, seed=99)
        tick = walk.profile.tick_size
        start = walk.profile.start_price
        for i in range(50_000):  # a tick every 12 s: a week
            price, volume = walk.step(TS + i * 12_000)
            assert price >= tick
            assert volume >= 0
            assert abs(price / tick - round(price / tick)) < 1e-6
            # The pull towards the start price keeps a long run believable (~6 stationary spreads).
            assert start / 1.3 < price < start * 1.3, (symbol, i, price)


def test_starting_prices_are_near_the_profiles() -> None:
    first = {s: p for s, p, _ in prices_and_volumes(0, len(SYMBOLS))}
    for symbol, price in first.items():
        start = PROFILES.get(symbol, DEFAULT_PROFILE).start_price
        assert abs(price / start - 1) < 0.01, symbol


def test_ticks_pass_the_api_schema() -> None:
    gen = TickGenerator(SYMBOLS, seed=4, source="sim")
    for _ in range(600):
        tick = gen.next_tick(TS)
        assert set(tick) == {"symbol", "price", "volume", "source", "ts", "event_id"}
        assert re.match(SYMBOL_PATTERN, tick["symbol"])
        TickIn.model_validate(tick, context={"now_ms": TS})


def window_log_returns(symbol: str, ticks_per_s: int, minutes: int, window_s: int, seed: int = 2026) -> list[float]:
    """Log returns over consecutive `window_s` windows of a walk ticking `ticks_per_s` times a second."""
    walk = SymbolWalk(symbol, seed)
    per_window = ticks_per_s * window_s
    closes = []
    for i in range(minutes * 60 * ticks_per_s + 1):
        price, _ = walk.step(TS + i * 1000 // ticks_per_s)
        if i % per_window == 0:
            closes.append(price)
    return [math.log(b / a) for a, b in zip(closes, closes[1:], strict=False)]


def test_the_spread_of_returns_is_the_same_at_10_and_400_ticks_per_second() -> None:
    # 20 minutes in 120 windows of 10 s at each rate (a fixed seed): the estimate's standard error is ~6.5%.
    # With sigma per tick, as before, 400 ticks/s spread sqrt(40) = 6.3 times as far as 10 ticks/s.
    expected = PROFILES["BTCUSDT"].sigma_per_s * math.sqrt(10)
    slow = statistics.pstdev(window_log_returns("BTCUSDT", 10, 20, 10))
    fast = statistics.pstdev(window_log_returns("BTCUSDT", 400, 20, 10))
    assert slow == pytest.approx(expected, rel=0.2)
    assert fast == pytest.approx(expected, rel=0.2)
    assert fast / slow == pytest.approx(1.0, rel=0.25)


def test_a_minutes_spread_follows_the_annualised_volatility() -> None:
    # BTC at 60% a year moves ~0.083% in a minute (one sigma); 300 minutes at 2 ticks/s.
    minute = statistics.pstdev(window_log_returns("BTCUSDT", 2, 300, 60))
    assert minute == pytest.approx(0.60 / math.sqrt(365.25 * 86_400 / 60), rel=0.15)


def test_ticks_with_the_same_time_share_one_price() -> None:
    walk = SymbolWalk("ETHUSDT", seed=3)
    walk.step(TS)
    moved = walk.step(TS + 60_000)[0]
    assert {walk.step(TS + 60_000)[0] for _ in range(20)} == {moved}
    assert walk.step(TS)[0] == moved  # an older tick does not move the price either


def test_feeder_volatility_overrides_a_symbols_own() -> None:
    settings = FeederSettings(volatility="BTCUSDT=1.2, ACME=0.4")
    assert settings.volatilities == {"BTCUSDT": 1.2, "ACME": 0.4}
    gen = TickGenerator(["BTCUSDT", "ACME"], seed=1, source="test", volatility=settings.volatilities)
    assert [w.profile.vol for w in gen._walks] == [1.2, 0.4]
    assert profile_for("EURUSD").vol == 0.07


@pytest.mark.parametrize("bad", ["BTCUSDT", "BTCUSDT=0", "BTCUSDT=fast", "=0.5", "BTCUSDT=50"])
def test_a_bad_feeder_volatility_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="FEEDER_VOLATILITY: .* is not SYMBOL=VOL"):
        FeederSettings(volatility=bad)
