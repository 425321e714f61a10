"""A gateway tells the API that a client wants `tick.received` one by one (demand.py), and only then."""

from __future__ import annotations

import anyio
import httpx
import orjson
import pytest
import redis

from harness.polling import until
from harness.sse import fields
from services.common.keys import Keys
from services.common.settings import Settings
from services.orchestrator_api.app import create_app
from services.realtime_gateway.defaults import TICKS_WANTED_TTL_S
from services.realtime_gateway.frames import Filters
from services.realtime_gateway.hub import SLOW, Hub
from tests.factories import make_tick
from tests.realtime_gateway.helpers import Gateway, open_stream

pytestmark = pytest.mark.anyio


async def test_the_flag_is_set_while_a_client_names_tick_received_and_only_then(
    gateway: Gateway, settings: Settings, client: redis.Redis
) -> None:
    wanted = Keys(settings.KEY_PREFIX).ticks_wanted
    hub: Hub = gateway.app.state.gateway.hub
    async with gateway.http() as http:
        async with open_stream(http), open_stream(http, "?types=ticks.merged,symbol.updated"):
            assert client.exists(wanted) == 0  # everything else it publishes, these get
        async with open_stream(http, "?types=tick.received&symbols=AAA"):
            until(lambda: client.exists(wanted), timeout=5)  # at once, not at the next renewal
            assert 0 < client.ttl(wanted) <= TICKS_WANTED_TTL_S
            assert hub.per_tick_clients == 1
        until(lambda: hub.per_tick_clients == 0, timeout=5)


async def test_a_dropped_client_is_counted_out_once(settings: Settings) -> None:
    hub = Hub(None, settings)  # type: ignore[arg-type]  # no Redis needed to count
    slow = hub.subscribe(Filters(types=frozenset({"tick.received"})))
    hub.subscribe(Filters())
    assert hub.per_tick_clients == 1
    hub.close(slow, SLOW)  # dropped by the hub...
    hub.unsubscribe(slow)  # ...then its stream ends
    assert hub.per_tick_clients == 0


async def test_a_stream_asking_for_ticks_one_by_one_gets_them_from_the_api(
    gateway: Gateway, settings: Settings, client: redis.Redis
) -> None:
    """End to end: the API (in process) sees the flag and publishes a tick.received per tick."""
    settings.TICK_MERGE_MS = 20.0
    app = create_app(settings)
    auth = (settings.INGEST_USERNAME, settings.INGEST_PASSWORD)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api", auth=auth) as api,
        gateway.http() as http,
        open_stream(http, "?types=tick.received") as stream,
    ):
        with anyio.fail_after(5):  # the API's merger runs on this loop: wait without blocking it
            while not app.state.mdstack.committer.merger.per_tick:
                await anyio.sleep(0.02)
        ticks = [make_tick(symbol="AAA") for _ in range(3)]
        await api.post("/ingest/ticks", json=ticks)
        events = await stream.events(3)
    assert [orjson.loads(fields(e)["data"])["data"]["event_id"] for e in events] == [t["event_id"] for t in ticks]
