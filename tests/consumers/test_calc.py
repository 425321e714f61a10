"""calc-a + calc-b against a plain reference computation over the same ticks.

calc-a runs its real Lua script on the real Redis; the reference below is
written from the definition of view W in DESIGN.md, independently of it.
"""

from __future__ import annotations

import math
import random

import pytest
import redis

from services.common.keys import Keys
from services.common.settings import Settings
from services.consumers import windows
from services.consumers.view import build_view
from tests.factories import stored_batch

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, on every candle boundary
INTERVALS = {"1m": 60_000, "5m": 300_000, "15m": 900_000}


def tick(i: int, ts: int, price: float, volume: float, symbol: str = "BTCUSDT") -> dict:
    return {
        "event_id": f"e{i:05d}",
        "symbol": symbol,
        "price": price,
        "volume": volume,
        "source": "t",
        "ts": ts,
        "received_at": 0.0,
    }


def reference(ticks: list[dict]) -> dict:
    """View W from its definition: sort by (ts, event_id), last 10, (latest-60s, latest], UTC buckets."""
    rows = sorted(ticks, key=lambda t: (t["ts"], t["event_id"]))
    last = rows[-1]
    window = [t for t in rows if last["ts"] - 60_000 < t["ts"] <= last["ts"]]
    volume = sum(t["volume"] for t in window)
    candles = {}
    for name, ms in INTERVALS.items():
        bucket = last["ts"] - last["ts"] % ms
        inside = [t for t in rows if bucket <= t["ts"] < bucket + ms]
        candles[name] = {
            "t": bucket,
            "open": inside[0]["price"],
            "high": max(t["price"] for t in inside),
            "low": min(t["price"] for t in inside),
            "close": inside[-1]["price"],
            "volume": sum(t["volume"] for t in inside),
            "count": len(inside),
        }
    last10 = rows[-10:]
    return {
        "price": last["price"],
        "volume": last["volume"],
        "ts": last["ts"],
        "event_id": last["event_id"],
        "change": last["price"] - rows[-2]["price"] if len(rows) > 1 else None,
        "change_1m": last["price"] - candles["1m"]["open"],
        "sma_10": sum(t["price"] for t in last10) / len(last10),
        "volume_1m": volume,
        "vwap_1m": sum(t["price"] * t["volume"] for t in window) / volume if volume else None,
        "high_1m": max(t["price"] for t in window),
        "low_1m": min(t["price"] for t in window),
        "trades_1m": len(window),
        "last_ticks": [t["event_id"] for t in last10],
        "candles": candles,
    }


def comparable(view: dict) -> dict:
    out = {k: view[k] for k in reference_keys()}
    out["last_ticks"] = [t["event_id"] for t in view["last_ticks"]]
    return out


def reference_keys() -> list[str]:
    return [
        "price", "volume", "ts", "event_id", "change", "change_1m", "sma_10", "volume_1m", "vwap_1m",
        "high_1m", "low_1m", "trades_1m", "candles",
    ]  # fmt: skip


def assert_same_view(actual: dict, expected: dict) -> None:
    """Exact for everything but sums, which are floating point and may differ in the last bits."""
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if key == "candles":
            for name, candle in value.items():
                got = actual["candles"][name]
                assert {k: got[k] for k in candle if k != "volume"} == {k: candle[k] for k in candle if k != "volume"}
                assert got["volume"] == pytest.approx(candle["volume"], rel=1e-12)
        elif isinstance(value, float) and key in ("volume_1m", "vwap_1m", "sma_10", "change", "change_1m"):
            assert actual[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        else:
            assert actual[key] == value, key


def run(client: redis.Redis, settings: Settings, batches: list[list[dict]], batch_ids: list[str] | None = None) -> dict:
    views = {}
    for n, batch in enumerate(batches):
        batch_id = batch_ids[n] if batch_ids else f"b{n}"
        if not client.exists(Keys(settings.KEY_PREFIX).batch(batch_id)):
            stored_batch(client, settings, batch_id, batch)
        for state in windows.apply(client, settings, batch_id, batch):
            views[state.symbol] = build_view(state, [t for t in batch if t["symbol"] == state.symbol], 0.0)
    return views


def random_ticks(seed: int, n: int, span_ms: int = 200_000) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        # Whole milliseconds, with deliberate ties on ts so event_id breaks them.
        ts = T0 + rng.randrange(0, span_ms, 7)
        out.append(tick(i, ts, round(rng.uniform(90, 110), 2), round(rng.uniform(0, 3), 3)))
    return out


def test_single_batch_matches_reference(client: redis.Redis, settings: Settings) -> None:
    ticks = random_ticks(1, 300)
    view = run(client, settings, [ticks])["BTCUSDT"]
    assert_same_view(comparable(view), reference(ticks))
    assert view["version"] == 1


def test_out_of_order_batches_match_reference(client: redis.Redis, settings: Settings) -> None:
    ticks = random_ticks(2, 400)
    rng = random.Random(3)
    shuffled = ticks[:]
    rng.shuffle(shuffled)
    batches = [shuffled[i : i + 37] for i in range(0, len(shuffled), 37)]

    view = run(client, settings, batches)["BTCUSDT"]

    assert_same_view(comparable(view), reference(ticks))
    assert view["version"] == len(batches)


def test_a_late_tick_older_than_the_window_only_reaches_its_candles(client: redis.Redis, settings: Settings) -> None:
    ticks = [tick(1, T0 + 100_000, 10.0, 1.0), tick(2, T0 + 170_000, 12.0, 2.0)]
    late = tick(3, T0 + 61_000, 50.0, 5.0)  # 109 s before the latest tick: outside (latest-60s, latest]

    view = run(client, settings, [ticks, [late]])["BTCUSDT"]

    assert_same_view(comparable(view), reference([*ticks, late]))
    assert view["trades_1m"] == 1
    assert view["candles"]["5m"]["high"] == 50.0


def test_rerun_of_an_applied_batch_changes_nothing(client: redis.Redis, settings: Settings) -> None:
    ticks = random_ticks(4, 120)
    batches = [ticks[:60], ticks[60:]]
    once = run(client, settings, batches)["BTCUSDT"]

    again = run(client, settings, batches)["BTCUSDT"]  # same batch ids: a retried job

    assert again == once
    assert_same_view(comparable(again), reference(ticks))


def test_split_and_order_of_batches_do_not_change_the_view(settings: Settings, client: redis.Redis) -> None:
    ticks = random_ticks(5, 500)
    one = comparable(run(client, settings, [ticks])["BTCUSDT"])

    other = settings.model_copy(update={"KEY_PREFIX": settings.KEY_PREFIX + "other:"})
    rng = random.Random(6)
    cuts = sorted(rng.sample(range(1, 500), 30))
    pieces = [ticks[a:b] for a, b in zip([0, *cuts], [*cuts, 500], strict=True)]
    rng.shuffle(pieces)
    many = comparable(run(client, other, pieces)["BTCUSDT"])

    assert_same_view(many, one)


def test_batches_in_one_call_give_the_state_of_batches_applied_one_by_one(
    settings: Settings, client: redis.Redis
) -> None:
    ticks = random_ticks(7, 90) + [tick(900 + i, T0 + i * 1000, 7.0 + i, 1.0, "ETHUSDT") for i in range(5)]
    random.Random(8).shuffle(ticks)
    batches = [ticks[i : i + 9] for i in range(0, len(ticks), 9)]
    one_by_one = run(client, settings, batches)

    other = settings.model_copy(update={"KEY_PREFIX": settings.KEY_PREFIX + "other:"})
    ids = [f"m{n}" for n in range(len(batches))]
    for batch_id, batch in zip(ids, batches, strict=True):
        stored_batch(client, other, batch_id, batch)
    together = windows.apply_many(client, other, list(zip(ids, batches, strict=True)))
    again = windows.apply_many(client, other, list(zip(ids, batches, strict=True)))  # a retried job

    first_seen = [symbol for batch in batches for symbol in sorted({t["symbol"] for t in batch})]
    assert [state.symbol for state in together] == list(dict.fromkeys(first_seen))
    for state in together:
        view = build_view(state, [t for t in ticks if t["symbol"] == state.symbol], 0.0)
        assert_same_view(comparable(view), comparable(one_by_one[state.symbol]))
        assert (
            view["version"]
            == one_by_one[state.symbol]["version"]
            == sum(any(t["symbol"] == state.symbol for t in batch) for batch in batches)
        )
    assert again == together


def stored_state(client: redis.Redis, settings: Settings) -> dict[str, object]:
    """Every calc-a key of the prefix (but the batches), by name without the prefix; sums rounded (floating point)."""
    out: dict[str, object] = {}
    for raw in client.scan_iter(match=f"{settings.KEY_PREFIX}sym:*"):
        key = raw.decode()
        if client.type(key) == b"hash":
            fields = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
            for name in ("v", "vol", "pv"):
                if name in fields:
                    fields[name] = f"{float(fields[name]):.9g}"
            out[key.removeprefix(settings.KEY_PREFIX)] = fields
        else:
            out[key.removeprefix(settings.KEY_PREFIX)] = client.zrange(key, 0, -1, withscores=True)
    return out


def test_one_call_of_fresh_and_applied_batches_stores_what_batches_one_by_one_store(
    settings: Settings, client: redis.Redis
) -> None:
    """A symbol's parts of every fresh batch of a call are applied together: every key (windows, latest ticks,
    every candle and its index, past the cap of candles kept) ends as the batches applied one by one leave it."""
    settings = settings.model_copy(update={"CANDLES_KEEP": 4})
    ticks = random_ticks(11, 240, span_ms=3_600_000)  # an hour: a dozen 5m candles, more than are kept
    ticks += [tick(900 + i, T0 + i * 97_000, 7.0 + i, 1.5, "ETHUSDT") for i in range(30)]
    random.Random(12).shuffle(ticks)
    batches = [ticks[i : i + 15] for i in range(0, len(ticks), 15)]
    run(client, settings, batches)

    other = settings.model_copy(update={"KEY_PREFIX": settings.KEY_PREFIX + "other:"})
    ids = [f"m{n}" for n in range(len(batches))]
    for batch_id, batch in zip(ids, batches, strict=True):
        stored_batch(client, other, batch_id, batch)
    early = [0, 3, 4]  # applied by a first job; the retry finds them applied, among the fresh ones
    windows.apply_many(client, other, [(ids[n], batches[n]) for n in early])
    windows.apply_many(client, other, list(zip(ids, batches, strict=True)))

    one_by_one = stored_state(client, settings)
    together = stored_state(client, other)
    assert any(":c:5m:" in key for key in one_by_one)
    assert len(client.zrange(Keys(settings.KEY_PREFIX).candle_index("BTCUSDT", "5m"), 0, -1)) == 4
    assert together == one_by_one


def test_symbols_are_independent(client: redis.Redis, settings: Settings) -> None:
    a = [tick(i, T0 + i * 1000, 100.0 + i, 1.0, "AAA") for i in range(15)]
    b = [tick(100 + i, T0 + i * 500, 5.0, 2.0, "BBB") for i in range(3)]

    views = run(client, settings, [[*a, *b]])

    assert_same_view(comparable(views["AAA"]), reference(a))
    assert_same_view(comparable(views["BBB"]), reference(b))
    assert views["BBB"]["change"] == 0.0
    assert math.isclose(views["BBB"]["vwap_1m"], 5.0)


def test_view_fields_for_a_first_tick(client: redis.Redis, settings: Settings) -> None:
    view = run(client, settings, [[tick(1, T0 + 5, 42.5, 0.0)]])["BTCUSDT"]

    assert view["change"] is None
    assert view["change_1m"] == 0.0
    assert view["volume_1m"] == 0.0
    assert view["vwap_1m"] is None  # no volume, no VWAP
    assert view["sma_10"] == 42.5
    assert view["candles"]["1m"] == {
        "t": T0, "open": 42.5, "high": 42.5, "low": 42.5, "close": 42.5, "volume": 0.0, "count": 1,
    }  # fmt: skip
