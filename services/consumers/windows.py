"""calc-a: per-symbol windows over event time, applied to Redis state by `consumers/windows.lua`.

Python groups the batch by symbol, sorts it by (ts, event_id) and pre-merges
its candles; the script folds that into the stored state in one atomic call
and marks the batch as applied (a field of the batch, so the mark dies with it),
so a retried job changes nothing. The state
depends only on the set of ticks applied, not on how they were split into
jobs or in which order the jobs ran (window sums are floating point, so they
may differ from a one-shot sum in the last bits).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from services.common.candles import INTERVALS_MS, candle_from_hash
from services.common.contract import Candle, Interval
from services.common.keys import LAST_TICKS, WINDOW_MS, Keys
from services.common.schemas import TickRecord
from services.common.scripts import register
from services.common.settings import Settings

SEP = "\x01"


@dataclass(frozen=True)
class LastTick:
    event_id: str
    price: float
    volume: float
    ts: int


@dataclass(frozen=True)
class SymbolState:
    symbol: str
    version: int
    latest_ts: int
    volume_1m: float
    pv_1m: float
    trades_1m: int
    high_1m: float | None
    low_1m: float | None
    last_ticks: list[LastTick]  # oldest first
    candles: dict[Interval, Candle | None]


def _num(value: float) -> str:
    return repr(float(value))


def prepare(keys: Keys, batches: list[list[TickRecord]]) -> dict[str, Any]:
    """The script's input: per batch, per symbol its key names, sorted ticks and the batch's own candles."""
    return {"w": WINDOW_MS, "iv": list(INTERVALS_MS.items()), "b": [_symbols(keys, ticks) for ticks in batches]}


def _symbols(keys: Keys, ticks: list[TickRecord]) -> list[dict[str, Any]]:
    by_symbol: dict[str, list[TickRecord]] = defaultdict(list)
    for tick in ticks:
        by_symbol[tick["symbol"]].append(tick)
    out = []
    for symbol in sorted(by_symbol):
        rows = sorted(by_symbol[symbol], key=lambda t: (t["ts"], t["event_id"]))
        out.append(
            {
                "s": symbol,
                "k": keys.sym_state(symbol),
                "cp": {iv: keys.candle_prefix(symbol, iv) for iv in INTERVALS_MS},
                "ci": {iv: keys.candle_index(symbol, iv) for iv in INTERVALS_MS},
                "t": [t["ts"] for t in rows],
                "m": [f"{t['event_id']}{SEP}{_num(t['price'])}{SEP}{_num(t['volume'])}" for t in rows],
                "p": [_num(t["price"]) for t in rows],
                "v": [_num(t["volume"]) for t in rows],
                "top": list(range(max(1, len(rows) - LAST_TICKS + 1), len(rows) + 1)),  # Lua indexes from 1
                "c": _candles(rows),
            }
        )
    return out


def _candles(rows: list[TickRecord]) -> list[dict[str, Any]]:
    """The batch's contribution to each candle; rows are sorted, so first is open and last is close."""
    out = []
    for interval, ms in INTERVALS_MS.items():
        buckets: dict[int, list[TickRecord]] = defaultdict(list)
        for t in rows:
            buckets[t["ts"] - t["ts"] % ms].append(t)
        for bucket, ticks in buckets.items():
            first, last = ticks[0], ticks[-1]
            prices = [t["price"] for t in ticks]
            out.append(
                {
                    "iv": interval,
                    "b": str(bucket),
                    "o": _num(first["price"]),
                    "ot": first["ts"],
                    "oe": first["event_id"],
                    "c": _num(last["price"]),
                    "ct": last["ts"],
                    "ce": last["event_id"],
                    "h": _num(max(prices)),
                    "l": _num(min(prices)),
                    "v": _num(sum(t["volume"] for t in ticks)),
                    "n": len(ticks),
                }
            )
    return out


def apply(client: redis.Redis, settings: Settings, batch_id: str, ticks: list[TickRecord]) -> list[SymbolState]:
    """Apply a batch once (a re-run only reads) and return the state of each symbol in it."""
    return apply_many(client, settings, [(batch_id, ticks)])


def apply_many(
    client: redis.Redis, settings: Settings, batches: list[tuple[str, list[TickRecord]]]
) -> list[SymbolState]:
    """Apply batches (id, ticks), each once, in one call; the state of each of their symbols after all of them."""
    keys = Keys(settings.KEY_PREFIX)
    script = register(client, "windows", __package__)
    payload = orjson.dumps(prepare(keys, [ticks for _, ticks in batches]))
    raw = script(
        keys=[keys.batch(batch_id) for batch_id, _ in batches],
        args=[settings.CANDLES_KEEP, settings.SYMBOL_IDLE_S, payload],
    )
    return [parse_state(item) for item in raw]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_state(item: list[Any]) -> SymbolState:
    symbol, agg, last, high, low, candles = item
    latest, vol, pv, n, version = (_s(x) for x in agg)
    last_ticks = []
    for member, score in zip(last[::2], last[1::2], strict=True):
        event_id, price, volume = _s(member).split(SEP)
        last_ticks.append(LastTick(event_id, float(price), float(volume), int(float(score))))
    parsed: dict[Interval, Candle | None] = {}
    for interval, bucket, fields in zip(INTERVALS_MS, candles[::2], candles[1::2], strict=True):
        pairs = dict(zip(fields[::2], fields[1::2], strict=True))
        parsed[interval] = candle_from_hash(int(_s(bucket)), pairs)
    return SymbolState(
        symbol=_s(symbol),
        version=int(version),
        latest_ts=int(latest),
        volume_1m=float(vol),
        pv_1m=float(pv),
        trades_1m=int(n),
        high_1m=float(_s(high[1])) if high else None,
        low_1m=float(_s(low[1])) if low else None,
        last_ticks=last_ticks,
        candles=parsed,
    )
