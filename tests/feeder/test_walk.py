"""The seeded random walk: reproducible, valid, and unique event_ids."""

from __future__ import annotations

import re
from itertools import count

from services.common.schemas import SYMBOL_PATTERN, TickIn
from services.feeder.walk import DEFAULT_PROFILE, PROFILES, SymbolWalk, TickGenerator

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XAUUSD", "EURUSD", "ACME"]
TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def prices_and_volumes(seed: int, n: int, symbols: list[str] = SYMBOLS) -> list[tuple[str, float, float]]:
    gen = TickGenerator(symbols, seed=seed, source="test")
    return [(t["symbol"], t["price"], t["volume"]) for t in (gen.next_tick(TS) for _ in range(n))]


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
        for _ in range(50_000):
            price, volume = walk.step()
            assert price >= tick
            assert volume >= 0
            assert abs(price / tick - round(price / tick)) < 1e-6
        # The pull towards the start price keeps a long run believable.
        assert start / 3 < price < start * 3


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
