"""MAX_SYMBOLS and SYMBOL_IDLE_S: a client cannot grow Redis by inventing symbols."""

from __future__ import annotations

import time

import httpx
import pytest
import redis

from services.common.keys import Keys
from services.common.settings import Settings
from services.consumers import windows
from tests.factories import make_tick, stored_batch

pytestmark = pytest.mark.anyio


@pytest.fixture
def capped(settings: Settings) -> Settings:
    settings.MAX_SYMBOLS = 3
    return settings


async def test_a_new_symbol_past_the_cap_is_refused_and_known_ones_keep_working(
    capped: Settings, api: httpx.AsyncClient
) -> None:
    for symbol in ("AAA", "BBB", "CCC"):
        assert (await api.post("/ingest/tick", json=make_tick(symbol=symbol))).status_code == 200

    refused = await api.post("/ingest/tick", json=make_tick(symbol="DDD", event_id="ddd-1"))
    known = await api.post("/ingest/tick", json=make_tick(symbol="AAA"))

    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["field"] == "symbol"
    assert "MAX_SYMBOLS=3" in error["message"]
    assert "DDD" in error["message"]
    assert known.status_code == 200
    assert known.json()["accepted"] == 1
    # Nothing of the refused request was stored: the same event is taken once there is room.
    client = redis.Redis.from_url(capped.redis_url)
    assert sorted(s.decode() for s in client.zrange(Keys(capped.KEY_PREFIX).symbols, 0, -1)) == ["AAA", "BBB", "CCC"]
    client.close()


async def test_a_batch_bringing_new_symbols_over_the_cap_is_refused_whole(
    capped: Settings, api: httpx.AsyncClient
) -> None:
    ok = await api.post("/ingest/ticks", json=[make_tick(symbol="AAA"), make_tick(symbol="BBB")])
    over = await api.post(
        "/ingest/ticks", json=[make_tick(symbol="AAA"), make_tick(symbol="CCC"), make_tick(symbol="DDD")]
    )

    assert ok.json()["accepted"] == 2
    assert over.status_code == 422
    assert "CCC, DDD" in over.json()["detail"][0]["message"]
    again = await api.post("/ingest/ticks", json=[make_tick(symbol="AAA"), make_tick(symbol="CCC")])
    assert again.json()["accepted"] == 2  # within the cap: both taken


async def test_an_idle_symbol_is_forgotten_and_frees_its_place(capped: Settings, api: httpx.AsyncClient) -> None:
    client = redis.Redis.from_url(capped.redis_url)
    keys = Keys(capped.KEY_PREFIX)
    for symbol in ("AAA", "BBB", "CCC"):
        assert (await api.post("/ingest/tick", json=make_tick(symbol=symbol))).status_code == 200
    # AAA's last tick was accepted longer than SYMBOL_IDLE_S ago.
    client.zadd(keys.symbols, {"AAA": (time.time() - capped.SYMBOL_IDLE_S - 1) * 1000})

    fresh = await api.post("/ingest/tick", json=make_tick(symbol="DDD"))

    assert fresh.status_code == 200
    assert sorted(s.decode() for s in client.zrange(keys.symbols, 0, -1)) == ["BBB", "CCC", "DDD"]
    assert (await api.get("/symbols/AAA/history")).status_code == 404
    client.close()


async def test_every_key_of_a_symbol_expires_after_its_idle_time(settings: Settings) -> None:
    settings.SYMBOL_IDLE_S = 120
    client = redis.Redis.from_url(settings.redis_url)
    now = int(time.time() * 1000)
    ticks = [make_tick(symbol="IDLE", ts=now - i * 30_000, event_id=f"i{i}") for i in range(30)]
    windows.apply(client, settings, stored_batch(client, settings, "f" * 32, ticks), ticks)

    names = list(client.scan_iter(match=Keys(settings.KEY_PREFIX).sym("IDLE") + "*"))
    assert len(names) > 10  # window, sums, last ticks, candles and their indexes
    assert {n: 0 < client.ttl(n) <= 120 for n in names} == dict.fromkeys(names, True)
    client.close()


async def test_keys_of_an_earlier_version_are_converted_at_start(settings: Settings) -> None:
    from services.orchestrator_api.app import create_app

    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.KEY_PREFIX)
    client.sadd(keys.symbols, "OLD1", "OLD2")  # a set, as before
    client.set(keys.batch("0" * 32), b'{"tick":[]}', ex=500)  # a string, as before
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass

    assert sorted(client.zrange(keys.symbols, 0, -1)) == [b"OLD1", b"OLD2"]
    assert client.hget(keys.batch("0" * 32), "items") == b'{"tick":[]}'
    assert 0 < client.ttl(keys.batch("0" * 32)) <= 500
    client.close()
