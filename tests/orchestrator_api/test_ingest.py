"""POST /ingest/tick and /ingest/ticks against real Redis: auth, validation, dedup, enqueue, publish."""

from __future__ import annotations

import asyncio
import base64
import time

import anyio
import httpx
import orjson
import pytest
import redis
import redis.asyncio as aioredis

from services.common.jobs import job_queue
from services.common.keys import Keys
from services.common.settings import Settings
from services.orchestrator_api.app import create_app
from tests.factories import make_tick

pytestmark = pytest.mark.anyio


@pytest.fixture(params=[True, False], ids=["fastpath", "router"])
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """Every ingest test runs against both the ASGI fast path and the FastAPI routes: same answers."""
    return settings.model_copy(update={"INGEST_FASTPATH": request.param})


def queued_batches(settings: Settings) -> list[list[dict]]:
    """The ticks of every batch waiting for the workers (pending, in commit order), read the way a worker reads
    them; with any waiting, an RQ job is queued to take them (the first commit carries one)."""
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.KEY_PREFIX)
    out = []
    for batch_id in client.zrange(keys.pending, 0, -1):
        raw = client.hget(keys.batch(batch_id.decode()), "items")
        out.append(orjson.loads(raw)["tick"] if raw else [])
    jobs = job_queue(settings, client).get_jobs()
    assert all(job.func_name == "services.consumers.tasks.process_batch" for job in jobs)
    assert jobs or not out
    client.close()
    return out


async def test_tick_accepted_is_queued_buffered_and_published(api: httpx.AsyncClient, settings: Settings) -> None:
    tick = make_tick(symbol="ETHUSDT", price=3201.25, volume=0.5, ts="2026-01-02T03:04:05.678Z")
    sub = aioredis.Redis.from_url(settings.redis_url)
    pubsub = sub.pubsub()
    await pubsub.subscribe(settings.PUBSUB_CHANNEL)
    await pubsub.get_message(timeout=1)  # subscribe confirmation

    response = await api.post("/ingest/tick", json=tick)

    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    [batch] = queued_batches(settings)
    [stored] = batch
    assert {k: stored[k] for k in ("event_id", "symbol", "price", "volume", "source", "ts")} == {
        "event_id": tick["event_id"],
        "symbol": "ETHUSDT",
        "price": 3201.25,
        "volume": 0.5,
        "source": "test",
        "ts": 1767323045678,
    }
    assert stored["received_at"] == pytest.approx(time.time() * 1000, abs=5000)
    with anyio.fail_after(5):
        message = None
        while message is None:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
    envelope = orjson.loads(message["data"])
    assert envelope["type"] == "ticks.merged"  # no client asked for tick.received (test_merged.py)
    assert envelope["symbol"] == "ETHUSDT"
    assert envelope["data"]["last_event_id"] == tick["event_id"]
    assert (envelope["data"]["count"], envelope["data"]["close"], envelope["data"]["volume"]) == (1, 3201.25, 0.5)
    [(history_id, fields)] = await sub.xrange(Keys(settings.KEY_PREFIX).history)
    assert envelope["id"] == history_id.decode()
    flushed = await sub.xrange(Keys(settings.KEY_PREFIX).flush_stream)
    assert [orjson.loads(f[b"items"])["tick"][0]["event_id"] for _, f in flushed] == [tick["event_id"]]
    await pubsub.aclose()
    await sub.aclose()


async def test_duplicate_event_id_is_acknowledged_once(api: httpx.AsyncClient, settings: Settings) -> None:
    tick = make_tick()
    first = await api.post("/ingest/tick", json=tick)
    second = await api.post("/ingest/tick", json={**tick, "price": 999.0})

    assert first.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert second.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    stored = [t for batch in queued_batches(settings) for t in batch]
    assert [(t["event_id"], t["price"]) for t in stored] == [(tick["event_id"], 100.0)]


async def test_duplicates_inside_one_batch_count_once(api: httpx.AsyncClient, settings: Settings) -> None:
    a, b = make_tick(event_id="dup-a"), make_tick(event_id="dup-b")
    response = await api.post("/ingest/ticks", json=[a, b, a, {**b, "price": 5.0}])

    assert response.json() == {"accepted": 2, "duplicates": 2, "rejected": []}
    stored = [t for batch in queued_batches(settings) for t in batch]
    assert sorted(t["event_id"] for t in stored) == ["dup-a", "dup-b"]


async def test_partial_batch_stores_valid_items_and_reports_bad_ones_by_index(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    good = [make_tick(event_id="ok-1"), make_tick(event_id="ok-2")]
    body = [good[0], make_tick(price=-1), good[1], {"symbol": "lower"}]

    response = await api.post("/ingest/ticks", json=body)

    assert response.status_code == 200
    result = response.json()
    assert result["accepted"] == 2
    assert [item["index"] for item in result["rejected"]] == [1, 3]
    assert result["rejected"][0]["errors"] == [{"field": "price", "message": "Input should be greater than 0"}]
    fields = {e["field"] for e in result["rejected"][1]["errors"]}
    assert fields == {"symbol", "price", "volume", "source", "ts", "event_id"}
    stored = [t for batch in queued_batches(settings) for t in batch]
    assert sorted(t["event_id"] for t in stored) == ["ok-1", "ok-2"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"symbol": "btcusdt"}, "symbol", "String should match pattern"),
        ({"symbol": "A" * 33}, "symbol", "String should match pattern"),
        ({"symbol": "BTC/USDT"}, "symbol", "String should match pattern"),
        ({"symbol": "BTC\u00e9"}, "symbol", "String should match pattern"),
        ({"price": 0}, "price", "greater than 0"),
        ({"price": "NaN"}, "price", "finite number"),
        ({"price": "Infinity"}, "price", "finite number"),
        ({"price": 1e300}, "price", "less than or equal to 1000000000000"),
        ({"price": True}, "price", "not a boolean"),
        ({"price": "abc"}, "price", "valid number"),
        ({"volume": -0.5}, "volume", "greater than or equal to 0"),
        ({"ts": 1_700_000_000}, "ts", "looks like epoch seconds"),
        ({"ts": 4_102_444_800_000}, "ts", "in the future"),
        ({"ts": "yesterday"}, "ts", "is not an ISO-8601 timestamp"),
        ({"ts": True}, "ts", "epoch milliseconds or an ISO-8601"),
        ({"ts": "1999-12-31T23:59:59Z"}, "ts", "before 2000-01-01"),
        ({"event_id": ""}, "event_id", "String should match pattern"),
        ({"event_id": "has space"}, "event_id", "String should match pattern"),
        ({"event_id": "x" * 129}, "event_id", "String should match pattern"),
        ({"source": "s\n1"}, "source", "String should match pattern"),
    ],
)
async def test_each_invalid_field_is_named(
    api: httpx.AsyncClient, settings: Settings, change: dict, field: str, message: str
) -> None:
    response = await api.post("/ingest/tick", json={**make_tick(), **change})

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "unprocessable_entity"
    [item] = body["detail"]
    assert any(e["field"] == field and message in e["message"] for e in item["errors"]), item
    assert queued_batches(settings) == []


async def test_missing_field_is_named(api: httpx.AsyncClient) -> None:
    tick = make_tick()
    del tick["event_id"]
    response = await api.post("/ingest/tick", json=tick)
    assert response.status_code == 422
    assert response.json()["detail"][0]["errors"] == [{"field": "event_id", "message": "Field required"}]


async def test_iso_and_epoch_ms_timestamps_are_the_same_instant(api: httpx.AsyncClient, settings: Settings) -> None:
    iso = make_tick(event_id="iso", ts="2026-03-01T10:00:00.250+02:00")
    naive = make_tick(event_id="naive", ts="2026-03-01T08:00:00.250")
    epoch = make_tick(event_id="epoch", ts=1772352000250)
    await api.post("/ingest/ticks", json=[iso, naive, epoch])
    stored = {t["event_id"]: t["ts"] for batch in queued_batches(settings) for t in batch}
    assert stored == {"iso": 1772352000250, "naive": 1772352000250, "epoch": 1772352000250}


@pytest.mark.parametrize(
    ("content", "headers", "status", "error"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "bad_request"),
        (b'{"a": 1}', {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        (b"[1, 2]", {"content-type": "application/json"}, 422, "unprocessable_entity"),
    ],
)
async def test_malformed_bodies_are_refused(
    api: httpx.AsyncClient, content: bytes, headers: dict, status: int, error: str
) -> None:
    response = await api.post("/ingest/tick", content=content, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == error


async def test_oversized_body_and_batch_get_413(api: httpx.AsyncClient, settings: Settings) -> None:
    settings.MAX_BODY_BYTES = 2_000
    settings.MAX_BATCH = 3
    big = await api.post(
        "/ingest/ticks", content=b"[" + b" " * 3_000 + b"]", headers={"content-type": "application/json"}
    )
    many = await api.post("/ingest/ticks", json=[make_tick() for _ in range(4)])
    empty = await api.post("/ingest/ticks", json=[])

    assert big.status_code == 413
    assert "the limit is 2000 bytes" in big.json()["detail"]
    assert many.status_code == 413
    assert "limit is 3" in many.json()["detail"]
    assert empty.status_code == 422
    assert queued_batches(settings) == []


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic " + base64.b64encode(b"test-user:wrong").decode(),
        "Basic " + base64.b64encode(b"wrong:test-password").decode(),
        "Basic !!!not-base64",
        "Bearer test-password",
    ],
)
async def test_ingest_without_valid_basic_auth_gets_401(
    settings: Settings, api: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(transport=api._transport, base_url="http://api") as anonymous:
        response = await anonymous.post("/ingest/tick", json=make_tick(), headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="mdstack-ingest"')
    assert queued_batches(settings) == []


async def test_concurrent_requests_share_one_group_commit(api: httpx.AsyncClient, settings: Settings) -> None:
    settings.INGEST_LINGER_MS = 50  # long enough that every request below joins the first group
    settings.INGEST_LINGER_GAP_MS = 0  # the first request lingers too, even if it was alone when the committer woke
    ticks = [make_tick(event_id=f"c{i}") for i in range(40)]

    responses = await asyncio.gather(*(api.post("/ingest/tick", json=t) for t in ticks))

    assert [r.json()["accepted"] for r in responses] == [1] * 40
    batches = queued_batches(settings)
    assert len(batches) < 40
    assert sorted(t["event_id"] for b in batches for t in b) == sorted(t["event_id"] for t in ticks)


async def test_a_lone_request_after_a_quiet_gap_is_committed_without_lingering(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """Nothing would join it: it does not wait INGEST_LINGER_MS; a request close behind another does."""
    settings.INGEST_LINGER_MS = 2000
    settings.INGEST_LINGER_GAP_MS = 5000  # the first request of this app comes after an endless gap

    started = time.monotonic()
    lone = await api.post("/ingest/tick", json=make_tick(event_id="lone"))
    lone_s = time.monotonic() - started
    started = time.monotonic()
    close = await api.post("/ingest/tick", json=make_tick(event_id="close"))  # well within the gap
    close_s = time.monotonic() - started

    assert lone.json()["accepted"] == close.json()["accepted"] == 1
    assert lone_s < 1.0  # far under the 2 s linger
    assert close_s >= 2.0  # it lingered for others to join


async def test_redis_down_answers_503_and_stores_nothing(settings: Settings) -> None:
    from services.common.embedded import free_port

    down = settings.model_copy(update={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    app = create_app(down)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://api", auth=("test-user", "test-password")
        ) as client:
            response = await client.post("/ingest/tick", json=make_tick())
            ready = await client.get("/health/readiness")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert ready.status_code == 503
    assert ready.json()["problems"][0].startswith("redis:")


async def test_a_stopping_api_refuses_with_503_json_and_stores_nothing(settings: Settings) -> None:
    """Once the committer is stopping, a request gets the same JSON refusal on both paths, not a bare 500."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await app.state.mdstack.committer.stop()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://api", auth=("test-user", "test-password")
        ) as client:
            response = await client.post("/ingest/tick", json=make_tick())

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {
        "error": "service_unavailable",
        "detail": "this API process is shutting down; nothing was stored, retry",
    }
    assert queued_batches(settings) == []


async def test_openapi_documents_ingest_bodies(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    tick_schema = spec["paths"]["/ingest/tick"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(tick_schema["required"]) == {"symbol", "price", "volume", "source", "ts", "event_id"}
    assert (await api.get("/docs")).status_code == 200


async def test_commit_survives_redis_losing_its_script_cache(settings: Settings) -> None:
    from services.common.kinds import TICK
    from services.orchestrator_api.ingest.commit import GroupCommitter

    client = redis.Redis.from_url(settings.redis_url)
    committer = GroupCommitter(settings, client)
    client.script_flush()  # what a Redis restart does to loaded scripts
    ticks = [make_tick(event_id=f"ns{i}") | {"received_at": 1.0} for i in range(3)]

    flags = committer._commit([[(TICK, t["event_id"], t) for t in ticks]])

    assert flags == [1, 1, 1]
    stored = [t["event_id"] for batch in queued_batches(settings) for t in batch]
    assert sorted(stored) == ["ns0", "ns1", "ns2"]  # once: the attempt that met NOSCRIPT stored nothing
    assert len(job_queue(settings, client)) == 1  # and left no job without a batch
    client.close()
