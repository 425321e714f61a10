"""A real answer of every route, and real events from the gateway, against the API's own /openapi.json.

The API and the gateway run on real ports (uvicorn threads); the worker, the ticker and the flusher run
inline, as in tests/orchestrator_api/test_rttm_api.py. Each body is validated with jsonschema against the
schema the document gives for its route and status ($refs resolved in the document); each stream event
against the schema its type has in `x-sse-events`. The events come from every publisher and its own
bytes: ingest's group commit (commit.py, ingest.lua), /internal/agg-update (views.lua), the ticker and
the alert evaluator (publish_many.lua), and the gateway's replay after a Last-Event-ID (`realtime.with_id`).
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import orjson
import pytest
import redis

from harness.http import client_tls
from harness.polling import until
from harness.servers import serve
from harness.sse import SSEReader, fields
from services.common.settings import Settings
from services.consumers import context
from services.consumers.rttm.ticker import Ticker
from services.consumers.worker import make_worker
from services.flusher.writer import Flusher
from services.orchestrator_api.app import create_app
from services.realtime_gateway.app import create_app as create_gateway
from tests.contract.document import Document
from tests.factories import make_tick
from tests.orchestrator_api.test_rttm_api import trade_events
from tests.realtime_gateway.helpers import open_stream
from tests.security.helpers import INGEST, make_item

pytestmark = pytest.mark.anyio
SYMBOL = "BTCUSDT"
STREAM_TIMEOUT_S = 20.0
PUBLISHED = {"tick.received", "ticks.merged", "symbol.updated", "rttm.metrics", "alert.fired", "alert.resolved"}


def now_ms() -> int:
    return int(time.time() * 1000)


def work(settings: Settings) -> None:
    """What the background processes do: the worker's jobs, then the flusher writes what Redis holds."""
    make_worker(context.configure(settings)).work(burst=True)
    flush(settings)


def flush(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    flusher = Flusher(settings.model_copy(update={"FLUSH_INTERVAL_MS": 50}), client, "contract")
    flusher.ensure_group()
    flusher.flush_once()
    flusher.close()
    client.close()


def tick_rttm(settings: Settings, **thresholds: float) -> None:
    """One ticker round (snapshot, alerts, `rttm.metrics`) with these alert thresholds."""
    client = redis.Redis.from_url(settings.redis_url)
    assert Ticker(settings.model_copy(update=thresholds), client, "contract").tick() is not None
    client.close()


class Checked:
    """The answers validated so far, by (method, path template, status)."""

    def __init__(self, document: Document, http: httpx.AsyncClient) -> None:
        self.document = document
        self.http = http
        self.seen: set[tuple[str, str, str]] = set()

    async def call(
        self, method: str, template: str, status: int = 200, *, symbol: str = SYMBOL, trade_id: str = "", **request: Any
    ) -> Any:
        url = template.format(symbol=symbol, trade_id=trade_id)
        response = await self.http.request(method, url, **request)
        assert response.status_code == status, response.text
        json = response.headers["content-type"].startswith("application/json")
        body = response.json() if json else response.text
        self.seen.add(self.document.response(method, template, status, body))
        return body


async def read_events(reader: SSEReader, until: set[str]) -> list[dict[str, str]]:
    """Frames until one of each type in `until` came (every frame read is returned)."""
    frames: list[dict[str, str]] = []
    with anyio.fail_after(STREAM_TIMEOUT_S):
        while not until <= {f["event"] for f in frames}:
            frames.append(fields(await reader.event()))
    return frames


async def test_every_route_and_stream_event_conforms_to_the_api_document(settings: Settings) -> None:
    settings.RTTM_FINALIZE_GRACE_S = 0  # measure terminal trades at once
    settings.TICK_MERGE_MS = 20.0  # the API sees the per-tick client below within 20 ms
    start = now_ms() - 5_000  # in complete seconds of the ticker's windows
    app = create_app(settings)
    with serve(app) as api_url:
        settings.API_URL = api_url  # where the worker posts its views
        with serve(create_gateway(settings)) as gateway_url:
            auth = (settings.INGEST_USERNAME, settings.INGEST_PASSWORD)
            async with (
                httpx.AsyncClient(base_url=api_url, auth=auth, timeout=10.0, verify=client_tls()) as api,
                httpx.AsyncClient(base_url=gateway_url, timeout=10.0, verify=client_tls()) as gateway,
            ):
                document = Document((await api.get("/openapi.json")).json())
                check = Checked(document, api)
                # Naming tick.received asks the API for a tick.received per tick, beside ticks.merged.
                async with open_stream(gateway, "?types=" + ",".join(sorted(PUBLISHED))) as live:
                    until(lambda: app.state.mdstack.committer.merger.per_tick, timeout=10)
                    await exercise(check, settings, start)
                    frames = await read_events(live, PUBLISHED)
                async with open_stream(gateway, headers={"Last-Event-ID": "1-0"}) as replayed:
                    # The history reaches back to the first event, not to 1-0: reset, then all of it again.
                    again = await read_events(replayed, {"reset"})
                    again += [fields(f) for f in await replayed.events(len(frames))]

    unchecked = {op for op in document.operations() if op[2] == "200"} - check.seen
    assert not unchecked, "routes whose answer this test does not check yet"
    assert [f["id"] for f in again[1:]] == [f["id"] for f in frames]
    for frame in frames + again:
        data = orjson.loads(frame["data"])
        document.event(frame["event"], data)
        if "id" in frame:
            assert (data["id"], data["type"]) == (frame["id"], frame["event"])
    assert PUBLISHED <= {f["event"] for f in frames}


async def exercise(check: Checked, settings: Settings, start: int) -> None:
    """Call every route with real data behind it, validating each answer."""
    await check.call("GET", "/health/liveness")
    await check.call("GET", "/health/readiness")
    await check.call("GET", "/metrics")
    await check.call("GET", "/rttm/metrics", 503)  # no snapshot yet
    ticks = [make_tick(symbol=SYMBOL, price=100.0 + i, ts=start + i * 500) for i in range(3)]
    await check.call("POST", "/ingest/tick", json=make_tick(symbol=SYMBOL, ts=start - 1_000))
    await check.call("POST", "/ingest/ticks", json=ticks)
    await check.call("POST", "/ingest/tick", 422, json={"symbol": "bad symbol"})
    for path in INGEST:
        if path.startswith("/ingest/tick"):
            continue
        item = make_item(path, event_time=start) if path != "/ingest/queue-metrics" else make_item(path)
        await check.call("POST", path, json=item)
    await check.call("POST", "/ingest/trade-events", json=trade_events("DONE", start))
    await check.call("POST", "/ingest/trade-events", json=trade_events("STUCK", start - 60_000, stages=2))
    await check.call("POST", "/ingest/dlq-events", json=make_item("/ingest/dlq-events", trade_id="DONE"))
    await check.call("POST", "/ingest/error-events", json=make_item("/ingest/error-events", trade_id="DONE"))
    make_worker(context.configure(settings)).work(burst=True)  # views posted to /internal/agg-update
    await check.call("GET", "/rttm/trades/{trade_id}", trade_id="STUCK")  # from Redis only: not flushed yet
    tick_rttm(settings, RTTM_ALERT_DLQ_PER_MIN=0.0)  # a DLQ event in the last minute: fired
    flush(settings)
    await check.call("GET", "/rttm/alerts")  # fired, not resolved yet
    tick_rttm(settings, RTTM_ALERT_DLQ_PER_MIN=100.0)  # resolved
    work(settings)

    internal = {"x-internal-token": settings.INTERNAL_TOKEN}
    view = await check.call("GET", "/symbols/{symbol}")
    stale = {"symbol": SYMBOL, "view": view, "ts": view["ts"]}
    assert await check.call("POST", "/internal/agg-update", json=stale, headers=internal) == {
        "published": 0,
        "stale": 1,
    }
    await check.call("GET", "/symbols/{symbol}", 404, symbol="NOPE")
    await check.call("GET", "/symbols")
    assert (await check.call("GET", "/symbols/views"))["symbols"][0]["view"] == view  # the stored view, as it is
    await check.call("GET", "/symbols/{symbol}/history")
    await check.call("GET", "/symbols/{symbol}/candles", params={"interval": "5m"})
    await check.call("GET", "/system")
    await check.call("GET", "/rttm/metrics")
    await check.call("GET", "/rttm/pipeline")
    await check.call("GET", "/rttm/trades/{trade_id}", trade_id="DONE")
    await check.call("GET", "/rttm/trades/{trade_id}", 404, trade_id="NOPE")
    await check.call("GET", "/rttm/stuck")
    await check.call("GET", "/rttm/dlq")
    await check.call("GET", "/rttm/alerts")
