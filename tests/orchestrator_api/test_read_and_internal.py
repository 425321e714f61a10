"""Read API (views, history from Postgres, candles) and /internal/agg-update."""

from __future__ import annotations

import httpx
import orjson
import pytest
import redis

from services.common.jobs import job_queue
from services.common.keys import FAMILIES
from services.common.settings import Settings
from services.consumers import windows
from services.consumers.view import build_view
from services.flusher.writer import Flusher
from services.orchestrator_api.app import create_app
from services.orchestrator_api.ingest.budget import RateMeter
from tests.consumers.test_calc import T0, tick
from tests.factories import stored_batch
from tests.flusher.test_flusher import accept

pytestmark = pytest.mark.anyio


def update(symbol: str, version: int, price: float) -> dict:
    return {"symbol": symbol, "view": {"symbol": symbol, "version": version, "price": price}, "ts": T0}


def calc_a_batches(settings: Settings, symbol: str, n: int) -> None:
    """Apply `n` batches of one tick of `symbol` with calc-a, as workers do: its views may then go up to version n."""
    client = redis.Redis.from_url(settings.redis_url)
    for i in range(n):
        ticks = [tick(i, T0 + i, 1.0 + i, 1.0, symbol)]
        windows.apply(client, settings, stored_batch(client, settings, f"{symbol}-{i}", ticks), ticks)
    client.close()


async def test_agg_update_requires_the_internal_token(api: httpx.AsyncClient, settings: Settings) -> None:
    no_token = await api.post("/internal/agg-update", json=update("AAA", 1, 1.0))
    wrong = await api.post("/internal/agg-update", json=update("AAA", 1, 1.0), headers={"x-internal-token": "nope"})
    # Ingest credentials are not enough for /internal.
    basic = await api.post(
        "/internal/agg-update", json=update("AAA", 1, 1.0), auth=(settings.INGEST_USERNAME, settings.INGEST_PASSWORD)
    )

    assert [r.status_code for r in (no_token, wrong, basic)] == [403, 403, 403]
    assert (await api.get("/symbols/AAA")).status_code == 404


async def test_agg_update_keeps_only_the_newest_version(api: httpx.AsyncClient, settings: Settings) -> None:
    headers = {"x-internal-token": settings.INTERNAL_TOKEN}
    client = redis.Redis.from_url(settings.redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(settings.PUBSUB_CHANNEL)
    pubsub.get_message(timeout=1)
    calc_a_batches(settings, "AAA", 2)

    first = await api.post("/internal/agg-update", json=[update("AAA", 2, 20.0)], headers=headers)
    stale = await api.post("/internal/agg-update", json=update("AAA", 1, 10.0), headers=headers)

    assert first.json() == {"published": 1, "stale": 0}
    assert stale.json() == {"published": 0, "stale": 1}
    assert (await api.get("/symbols/AAA")).json()["price"] == 20.0
    messages = []
    while (m := pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)) is not None:
        messages.append(orjson.loads(m["data"]))
    assert [(m["type"], m["data"]["view"]["version"]) for m in messages] == [("symbol.updated", 2)]
    pubsub.close()
    client.close()


@pytest.mark.parametrize("version", [2**63 - 1, 2**53])
async def test_a_view_version_past_2_53_is_refused_naming_it(
    api: httpx.AsyncClient, settings: Settings, version: int
) -> None:
    """Lua compares versions as doubles: past 2**53 a real next version can be "equal", and the symbol froze."""
    headers = {"x-internal-token": settings.INTERNAL_TOKEN}
    calc_a_batches(settings, "AAA", 1)

    huge = await api.post("/internal/agg-update", json=update("AAA", version, 99.0), headers=headers)
    real = await api.post("/internal/agg-update", json=update("AAA", 1, 1.0), headers=headers)

    assert huge.status_code == 422
    assert [e["field"] for e in huge.json()["detail"]] == ["body.view"]
    assert "`version` must be an integer from 0 to 2**53-1" in huge.json()["detail"][0]["message"]
    assert real.json() == {"published": 1, "stale": 0}


async def test_a_view_version_ahead_of_calc_a_is_refused_and_later_views_still_publish(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """Only calc-a numbers views: a version it has not reached would hide every view it makes until then."""
    headers = {"x-internal-token": settings.INTERNAL_TOKEN}
    calc_a_batches(settings, "AAA", 2)

    ahead = await api.post(
        "/internal/agg-update", json=[update("AAA", 1, 1.0), update("AAA", 3, 99.0)], headers=headers
    )
    no_state = await api.post("/internal/agg-update", json=update("BBB", 1, 1.0), headers=headers)
    real = await api.post("/internal/agg-update", json=update("AAA", 2, 2.0), headers=headers)

    assert ahead.status_code == 422
    assert ahead.json()["detail"] == [
        {
            "field": "body.1.view.version",
            "message": "version 3 is ahead of calc-a's version 2 of AAA: views are numbered by calc-a, and a "
            "version past it would hide every later view; nothing was stored",
        }
    ]
    assert no_state.status_code == 422
    assert "calc-a's version 0 of BBB" in no_state.json()["detail"][0]["message"]
    assert real.json() == {"published": 1, "stale": 0}
    assert (await api.get("/symbols/AAA")).json()["price"] == 2.0


async def test_agg_update_validates_its_body(api: httpx.AsyncClient, settings: Settings) -> None:
    response = await api.post(
        "/internal/agg-update",
        json={"symbol": "bad symbol", "view": {}, "ts": "x"},
        headers={"x-internal-token": settings.INTERNAL_TOKEN},
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["detail"]}
    assert any(f.endswith("symbol") for f in fields)
    assert any(f.endswith("ts") for f in fields)


async def test_api_key_is_enforced_on_reads_when_set(api: httpx.AsyncClient, settings: Settings) -> None:
    assert (await api.get("/symbols")).status_code == 200
    settings.API_KEY = "read-key"

    missing = await api.get("/symbols")
    wrong = await api.get("/symbols", headers={"x-api-key": "nope"})
    right = await api.get("/symbols", headers={"x-api-key": "read-key"})
    health = await api.get("/health/liveness")

    assert (missing.status_code, wrong.status_code, right.status_code, health.status_code) == (401, 401, 200, 200)


async def test_history_comes_from_postgres_newest_first_and_capped(api: httpx.AsyncClient, settings: Settings) -> None:
    settings.HISTORY_LIMIT_MAX = 5
    settings.FLUSH_INTERVAL_MS = 50
    ids = accept(settings, 8, symbol="HIST")  # ts = now - i: ids[0] is the newest
    client = redis.Redis.from_url(settings.redis_url)
    windows.apply(
        client, settings, stored_batch(client, settings, "b1", [h := tick(1, T0, 1.0, 1.0, "HIST")]), [h]
    )  # makes HIST a known symbol
    f = Flusher(settings, client, "f1")
    f.ensure_group()
    f.flush_once()
    f.close()

    capped = (await api.get("/symbols/HIST/history", params={"limit": 100})).json()
    two = (await api.get("/symbols/HIST/history", params={"limit": 2})).json()
    unknown = await api.get("/symbols/NOPE/history")
    bad = await api.get("/symbols/HIST/history", params={"limit": 0})

    assert capped["limit"] == 5
    assert [t["event_id"] for t in capped["ticks"]] == ids[:5]
    assert [t["event_id"] for t in two["ticks"]] == ids[:2]
    assert capped["ticks"][0]["price"] == 100.0
    assert unknown.status_code == 404
    assert bad.status_code == 422
    client.close()


async def test_candles_are_served_oldest_first(api: httpx.AsyncClient, settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    ticks = [tick(i, T0 + i * 30_000, 10.0 + i, 1.0, "CNDL") for i in range(7)]  # 3.5 minutes
    windows.apply(client, settings, stored_batch(client, settings, "b1", ticks), ticks)

    one = (await api.get("/symbols/CNDL/candles", params={"interval": "1m"})).json()
    five = (await api.get("/symbols/CNDL/candles", params={"interval": "5m", "limit": 1})).json()
    last_two = (await api.get("/symbols/CNDL/candles", params={"interval": "1m", "limit": 2})).json()
    bad = await api.get("/symbols/CNDL/candles", params={"interval": "2m"})

    assert [(c["t"], c["open"], c["close"], c["count"]) for c in one["candles"]] == [
        (T0, 10.0, 11.0, 2),
        (T0 + 60_000, 12.0, 13.0, 2),
        (T0 + 120_000, 14.0, 15.0, 2),
        (T0 + 180_000, 16.0, 16.0, 1),
    ]
    assert five["candles"] == [
        {"t": T0, "open": 10.0, "high": 16.0, "low": 10.0, "close": 16.0, "volume": 7.0, "count": 7}
    ]
    assert [c["t"] for c in last_two["candles"]] == [T0 + 120_000, T0 + 180_000]
    assert one["tick_size"] == 0.01  # not a demo symbol: the default
    assert bad.status_code == 422
    client.close()


async def test_views_gives_every_symbol_its_view_and_the_first_price_of_its_utc_day(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    # The day before T0 (midnight), then two ticks of T0's day: the session opens at the first of those.
    ticks = [tick(0, T0 - 60_000, 5.0, 1.0, "SESS"), tick(1, T0 + 1_000, 10.0, 1.0, "SESS")]
    ticks.append(tick(2, T0 + 20 * 60_000, 12.0, 2.0, "SESS"))
    (state,) = windows.apply(client, settings, stored_batch(client, settings, "b1", ticks), ticks)
    view = build_view(state, ticks, T0 + 20 * 60_000 + 5.0)
    headers = {"x-internal-token": settings.INTERNAL_TOKEN}
    await api.post("/internal/agg-update", json={"symbol": "SESS", "view": view, "ts": view["ts"]}, headers=headers)
    stored_batch(client, settings, "b2", [tick(3, T0, 1.0, 1.0, "NOVIEW")])  # known, no view yet

    response = await api.get("/symbols/views")

    assert response.status_code == 200
    assert response.json() == {
        "symbols": [
            {"symbol": "NOVIEW", "tick_size": 0.01, "view": None, "session": None},
            {
                "symbol": "SESS",
                "tick_size": 0.01,
                "view": orjson.loads(orjson.dumps(view)),
                "session": {"start": T0, "open": 10.0},
            },
        ]
    }
    client.close()


async def test_symbols_and_candles_carry_each_symbols_tick_size(api: httpx.AsyncClient, settings: Settings) -> None:
    settings.TICK_SIZES = "ACME=0.05"
    client = redis.Redis.from_url(settings.redis_url)
    for symbol in ("ACME", "EURUSD", "OTHER"):
        ticks = [tick(0, T0, 1.1, 1.0, symbol)]
        windows.apply(client, settings, stored_batch(client, settings, f"b-{symbol}", ticks), ticks)

    listed = (await api.get("/symbols")).json()
    snapshot = (await api.get("/symbols/views")).json()
    candles = (await api.get("/symbols/EURUSD/candles")).json()

    expected = {"ACME": 0.05, "EURUSD": 0.00001, "OTHER": 0.01}
    assert {s["symbol"]: s["tick_size"] for s in listed["symbols"]} == expected
    assert {s["symbol"]: s["tick_size"] for s in snapshot["symbols"]} == expected  # the dashboard's list reads it
    assert candles["tick_size"] == 0.00001
    client.close()


async def test_bad_symbol_in_path_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.get("/symbols/bad%20symbol")
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "path.symbol"


async def test_metrics_report_requests_and_ingest(api: httpx.AsyncClient) -> None:
    await api.get("/symbols")
    text = (await api.get("/metrics")).text
    assert 'mdstack_http_requests_total{method="GET",route="/symbols",status="200"}' in text
    assert "mdstack_ingest_commit_seconds_bucket" in text


async def test_system_reports_queue_backlog_and_accepted_items(
    api: httpx.AsyncClient, settings: Settings, client: redis.Redis
) -> None:
    ticks = [
        {"symbol": "SYS", "price": 1.0, "volume": 1.0, "source": "t", "ts": T0 + i, "event_id": f"s{i}"}
        for i in range(3)
    ]
    await api.post("/ingest/ticks", json=ticks)
    await api.post("/ingest/ticks", json=ticks[:1])  # a duplicate is not counted again

    status = (await api.get("/system")).json()

    # Jobs follow JOB_CADENCE_MS, not the requests: one or two here, as RQ holds them.
    queued = job_queue(settings, client).count
    assert queued in (1, 2)
    assert status["queue"] == {"queued": queued, "started": 0, "failed": 0, "scheduled": 0}
    assert status["flush_backlog"] == 1
    assert status["ingest"] == {"accepted_total": 3, "accepted_by_kind": {"tick": 3}}
    memory = status["redis"]
    assert memory["used_memory_bytes"] > 0
    assert set(memory["projected_by_family"]) == {f.name for f in FAMILIES}
    assert memory["projected_bytes"] == sum(memory["projected_by_family"].values())
    assert memory["rates"]["symbols"] == 1


def test_ingest_rate_is_measured_between_looks_at_the_shared_counters() -> None:
    meter = RateMeter()
    assert meter.rates({"tick": 100}, 5, now=0.0).ticks == 0.0  # one look: no rate yet
    rates = meter.rates({"tick": 600, "trade": 160, "queue": 40}, 5, now=10.0)
    assert (rates.ticks, rates.events, rates.trades) == (50.0, 20.0, 16 / 6)
    later = meter.rates({"tick": 600, "trade": 160, "queue": 40}, 5, now=75.0)  # the first look is too old
    assert later.ticks == 0.0


async def test_browsers_on_the_listed_origins_may_read(settings: Settings) -> None:
    settings.CORS_ORIGINS = "http://dashboard"  # none by default: tests/security/test_cors.py
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as api,
    ):
        preflight = await api.options(
            "/symbols",
            headers={
                "origin": "http://dashboard",
                "access-control-request-method": "GET",
                "access-control-request-headers": "x-api-key",
            },  # fmt: skip
        )
        read = await api.get("/symbols", headers={"origin": "http://dashboard"})
    assert preflight.status_code == 200
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    assert read.headers["access-control-allow-origin"] == "http://dashboard"
