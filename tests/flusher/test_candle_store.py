"""Candles in Postgres: merged by the flusher exactly once, served with Redis' by GET /symbols/{id}/candles."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
import redis

from services.common.candles import INTERVALS_MS
from services.common.embedded import free_port
from services.common.keys import Keys
from services.common.kinds import TICK
from services.common.settings import Settings
from services.consumers import windows
from services.flusher import candle_store
from services.flusher.retention import Maintainer
from services.flusher.writer import Flusher
from services.orchestrator_api.app import create_app
from services.orchestrator_api.ingest.commit import GroupCommitter
from services.orchestrator_api.read.routes import PARTIAL_HEADER
from tests.factories import stored_batch
from tests.flusher.test_flusher import _close_flushers, flusher  # noqa: F401 (a fixture: closes flushers)

HOUR_MS = 3_600_000
# A recent time on every candle boundary (ticks far in the past could fall outside kept partitions).
BASE = int(time.time() * 1000) // HOUR_MS * HOUR_MS - 2 * HOUR_MS


def tick(event_id: str, ts: int, price: float, volume: float = 1.0, symbol: str = "CNDL") -> dict:
    return {
        "event_id": event_id,
        "symbol": symbol,
        "price": price,
        "volume": volume,
        "source": "t",
        "ts": ts,
        "received_at": time.time() * 1000,
    }


def commit(settings: Settings, *batches: list[dict]) -> None:
    """Each list as one group commit of the API: one flush stream entry."""
    client = redis.Redis.from_url(settings.redis_url)
    committer = GroupCommitter(settings, client)
    for ticks in batches:
        assert all(committer._commit([[(TICK, t["event_id"], t) for t in ticks]]))
    client.close()


def reference(ticks: list[dict]) -> dict[tuple[str, str, int], dict]:
    """Candles from their definition: UTC buckets, open/close = earliest/latest (ts, event_id) by bytes."""
    out: dict[tuple[str, str, int], dict] = {}
    for name, ms in INTERVALS_MS.items():
        buckets: dict[tuple[str, int], list[dict]] = {}
        for t in ticks:
            buckets.setdefault((t["symbol"], t["ts"] - t["ts"] % ms), []).append(t)
        for (symbol, bucket), inside in buckets.items():
            inside.sort(key=lambda t: (t["ts"], t["event_id"].encode()))
            first, last = inside[0], inside[-1]
            out[(symbol, name, bucket)] = {
                "open": first["price"],
                "open_ts": first["ts"],
                "open_event_id": first["event_id"],
                "high": max(t["price"] for t in inside),
                "low": min(t["price"] for t in inside),
                "close": last["price"],
                "close_ts": last["ts"],
                "close_event_id": last["event_id"],
                "volume": sum(t["volume"] for t in inside),
                "count": len(inside),
            }
    return out


def stored(settings: Settings) -> dict[tuple[str, str, int], dict]:
    def ms(value: datetime) -> int:
        return round(value.timestamp() * 1000)

    with psycopg.connect(settings.pg_dsn) as conn:
        found = conn.execute(
            'SELECT symbol, "interval", bucket_start, open, open_ts, open_event_id, high, low, close, close_ts, '
            "close_event_id, volume, count FROM md_candles"
        ).fetchall()
    return {
        (symbol, interval, ms(bucket)): {
            "open": o,
            "open_ts": ms(ot),
            "open_event_id": oe,
            "high": h,
            "low": lo,
            "close": c,
            "close_ts": ms(ct),
            "close_event_id": ce,
            "volume": v,
            "count": n,
        }
        for symbol, interval, bucket, o, ot, oe, h, lo, c, ct, ce, v, n in found
    }


@pytest.fixture(autouse=True)
def _quick_batches(settings: Settings) -> None:
    settings.FLUSH_INTERVAL_MS = 50


def flush_all(f: Flusher) -> None:
    while f.flush_once() or f.redis.xlen(f.keys.flush_stream):
        pass


def mixed_ticks(seed: int, n: int) -> list[dict]:
    """Ticks over 40 minutes, two symbols, many sharing a ts; volumes in quarters so every sum is exact.
    Event ids mix cases: bytewise 'B' < 'a', where a natural-language collation says the opposite."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = BASE + rng.randrange(0, 40 * 60_000, 250)
        prefix = rng.choice(["a", "B", "b", "A", "_"])
        out.append(tick(f"{prefix}{i:04d}", ts, round(rng.uniform(90, 110), 2), rng.randrange(1, 9) / 4,
                        rng.choice(["CNDL", "OTHR"])))  # fmt: skip
    return out


@pytest.mark.slow  # thousands of ticks through several flushes
def test_candles_of_ticks_flushed_in_several_batches_equal_the_candles_computed_directly(settings: Settings) -> None:
    ticks = mixed_ticks(1, 600)
    shuffled = ticks[:]
    random.Random(2).shuffle(shuffled)  # later batches carry older ticks too
    f = flusher(settings)

    for i in range(0, len(shuffled), 40):  # 15 transactions, each merging into candles the others touched
        commit(settings, shuffled[i : i + 40])
        assert f.flush_once() == 40

    assert stored(settings) == reference(ticks)


def test_postgres_candles_equal_the_candles_calc_a_keeps_in_redis(settings: Settings) -> None:
    ticks = mixed_ticks(3, 300)
    commit(settings, ticks[:150], ticks[150:])
    client = redis.Redis.from_url(settings.redis_url)
    windows.apply(client, settings, stored_batch(client, settings, "1" * 32, ticks), ticks)
    client.close()
    flush_all(flusher(settings))

    client = redis.Redis.from_url(settings.redis_url)
    in_redis = {}
    for (symbol, interval, bucket), c in stored(settings).items():
        key = Keys(settings.KEY_PREFIX).candle(symbol, interval, bucket)
        fields = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
        in_redis[(symbol, interval, bucket)] = fields
        assert (float(fields["o"]), int(fields["ot"]), fields["oe"]) == (c["open"], c["open_ts"], c["open_event_id"])
        assert (float(fields["c"]), int(fields["ct"]), fields["ce"]) == (c["close"], c["close_ts"], c["close_event_id"])
        assert (float(fields["h"]), float(fields["l"])) == (c["high"], c["low"])
        assert (float(fields["v"]), int(fields["n"])) == (c["volume"], c["count"])
    assert len(in_redis) == len(reference(ticks))
    client.close()


def test_a_batch_written_twice_changes_no_candle(settings: Settings) -> None:
    ticks = mixed_ticks(4, 100)
    commit(settings, ticks)
    crashed = flusher(settings, "f1")
    batch = crashed.collect()
    assert crashed.write(batch) == 100  # committed, then "killed" before the ack
    after_first = stored(settings)

    assert flusher(settings, "f1").flush_once() == 0  # the same entry written again

    assert stored(settings) == after_first == reference(ticks)


def test_a_late_tick_for_an_old_bucket_merges_right(settings: Settings) -> None:
    early = [tick("m", BASE + 10_000, 10.0), tick("n", BASE + 50_000, 12.0), tick("p", BASE + 70_000, 20.0)]
    commit(settings, early)
    f = flusher(settings)
    flush_all(f)
    late = [
        tick("z", BASE + 10_000, 9.0),  # same ts as the open, larger event id: not the open
        tick("a", BASE + 5_000, 11.0),  # earlier: the new open
        tick("B", BASE + 50_000, 13.0),  # same ts as the close, 'B' < 'n' bytewise: not the close
        tick("o", BASE + 50_000, 14.5),  # 'o' > 'n': the new close, and the new high
    ]
    commit(settings, late)

    flush_all(f)

    candles = stored(settings)
    assert candles[("CNDL", "1m", BASE)] == {
        "open": 11.0,
        "open_ts": BASE + 5_000,
        "open_event_id": "a",
        "high": 14.5,
        "low": 9.0,
        "close": 14.5,
        "close_ts": BASE + 50_000,
        "close_event_id": "o",
        "volume": 6.0,
        "count": 6,
    }
    assert candles[("CNDL", "1m", BASE + 60_000)]["count"] == 1  # the next bucket is untouched
    assert candles[("CNDL", "5m", BASE)]["close_event_id"] == "p"
    assert candles == reference(early + late)


def test_expired_candles_are_deleted_and_younger_ones_kept(settings: Settings) -> None:
    settings.CANDLE_RETENTION_DAYS = 90
    now = datetime.now(UTC).replace(microsecond=0)
    ages = {"old": timedelta(days=91), "edge": timedelta(days=90), "young": timedelta(days=1)}
    with psycopg.connect(settings.pg_dsn) as conn:
        for symbol, age in ages.items():
            at = now - age
            conn.execute(
                "INSERT INTO md_candles VALUES (%s, '1m', %s, 1, %s, 'e', 1, 1, 1, %s, 'e', 1, 1)",
                (symbol, at, at, at),
            )
        conn.commit()

    Maintainer(settings, threading.Event()).run_once(now)

    with psycopg.connect(settings.pg_dsn) as conn:
        assert sorted(s for (s,) in conn.execute("SELECT symbol FROM md_candles")) == ["edge", "young"]


def test_retention_deletes_in_chunks_until_none_is_left(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.flusher import aged_rows

    monkeypatch.setattr(aged_rows, "CHUNK", 7)
    old = datetime.now(UTC) - timedelta(days=settings.CANDLE_RETENTION_DAYS + 1)
    with psycopg.connect(settings.pg_dsn) as conn:
        for i in range(30):
            at = old - timedelta(minutes=i)
            conn.execute(
                "INSERT INTO md_candles VALUES ('OLD', '1m', %s, 1, %s, 'e', 1, 1, 1, %s, 'e', 1, 1)", (at, at, at)
            )
        conn.commit()

        assert candle_store.delete_expired_candles(conn, datetime.now(UTC), settings) == 30
        assert conn.execute("SELECT count(*) FROM md_candles").fetchone() == (0,)


# --- GET /symbols/{id}/candles -----------------------------------------------------------


def minute_ticks(minutes: range, *, price: float = 10.0, tag: str = "t") -> list[dict]:
    """One tick per minute bucket, priced by minute so each candle is recognisable."""
    return [tick(f"{tag}{m:03d}", BASE + m * 60_000 + 1_000, price + m) for m in minutes]


@pytest.mark.anyio
async def test_route_serves_postgres_candles_when_redis_has_none(api: httpx.AsyncClient, settings: Settings) -> None:
    commit(settings, minute_ticks(range(6)))
    flush_all(flusher(settings))  # calc-a never ran: Redis has no candles, nor the symbol

    answer = await api.get("/symbols/CNDL/candles", params={"interval": "1m", "limit": 4})

    assert answer.status_code == 200
    assert PARTIAL_HEADER not in answer.headers
    assert answer.json() == {
        "symbol": "CNDL",
        "interval": "1m",
        "interval_ms": 60_000,
        "tick_size": 0.01,
        "candles": [
            {
                "t": BASE + m * 60_000,
                "open": 10.0 + m,
                "high": 10.0 + m,
                "low": 10.0 + m,
                "close": 10.0 + m,
                "volume": 1.0,
                "count": 1,
            }
            for m in range(2, 6)
        ],  # fmt: skip
    }


@pytest.mark.anyio
async def test_route_merges_redis_and_postgres_newest_last_redis_winning(
    api: httpx.AsyncClient, settings: Settings, client: redis.Redis
) -> None:
    flushed = minute_ticks(range(8))  # minutes 0-7 in Postgres
    commit(settings, flushed)
    flush_all(flusher(settings))
    newer = [tick("r7", BASE + 7 * 60_000 + 30_000, 99.0), *minute_ticks(range(8, 10), tag="r")]
    windows.apply(
        client, settings, stored_batch(client, settings, "2" * 32, newer), newer
    )  # Redis: minute 7 (a tick Postgres lacks), 8 and 9

    answer = (await api.get("/symbols/CNDL/candles", params={"interval": "1m", "limit": 5})).json()
    everything = (await api.get("/symbols/CNDL/candles", params={"interval": "1m"})).json()

    assert [(c["t"] - BASE) // 60_000 for c in answer["candles"]] == [5, 6, 7, 8, 9]
    assert [c["close"] for c in answer["candles"]] == [15.0, 16.0, 99.0, 18.0, 19.0]
    assert answer["candles"][2]["count"] == 1  # Redis' candle of minute 7, not Postgres' one
    assert [(c["t"] - BASE) // 60_000 for c in everything["candles"]] == list(range(10))


@pytest.mark.anyio
async def test_route_serves_redis_candles_marked_partial_when_postgres_is_down(
    settings: Settings, client: redis.Redis
) -> None:
    live = minute_ticks(range(3))
    windows.apply(client, settings, stored_batch(client, settings, "3" * 32, live), live)
    down = settings.model_copy(update={"PG_URL": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"})
    app = create_app(down)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as api:
            known = await api.get("/symbols/CNDL/candles", params={"interval": "1m"})
            unknown = await api.get("/symbols/NOPE/candles", params={"interval": "1m"})

    assert known.status_code == 200
    assert known.headers[PARTIAL_HEADER] == "postgres-unavailable"
    assert [c["close"] for c in known.json()["candles"]] == [10.0, 11.0, 12.0]
    assert unknown.status_code == 503
    assert unknown.json()["detail"] == "Postgres is unavailable and Redis does not know this symbol"


@pytest.mark.anyio
async def test_route_refuses_a_symbol_neither_redis_nor_postgres_knows(api: httpx.AsyncClient) -> None:
    answer = await api.get("/symbols/NOPE/candles")

    assert answer.status_code == 404
    assert answer.json() == {"error": "not_found", "detail": "unknown symbol 'NOPE'"}
