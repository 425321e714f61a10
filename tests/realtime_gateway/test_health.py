"""Liveness, readiness (Redis) and /metrics of the gateway."""

from __future__ import annotations

import anyio
import pytest

from services.common.embedded import free_port
from services.common.settings import Settings
from tests.realtime_gateway.helpers import Gateway, Publisher, open_stream

pytestmark = pytest.mark.anyio


async def test_liveness_and_readiness_are_200_with_both_servers_up(gateway: Gateway) -> None:
    with anyio.fail_after(10):
        async with gateway.http() as http:
            live = await http.get("/health/liveness")
            ready = await http.get("/health/readiness")
    assert (live.status_code, live.json()) == (200, {"status": "alive"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_readiness_does_not_depend_on_postgres(start_gateway, settings: Settings) -> None:
    """The gateway never reads Postgres: with it unreachable the stream still works, so it stays ready."""
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    gateway = start_gateway(Settings(**{**settings.model_dump(), "PG_URL": closed}))
    with anyio.fail_after(10):
        async with gateway.http() as http:
            ready = await http.get("/health/readiness")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_metrics_expose_the_gateway_counters(gateway: Gateway, publisher: Publisher) -> None:
    with anyio.fail_after(10):
        async with gateway.http() as http:
            async with open_stream(http) as reader:
                await publisher.one()
                await reader.event()
            text = (await http.get("/metrics")).text
    for name in (
        "mdstack_gateway_clients ",
        "mdstack_gateway_events_received_total ",
        "mdstack_gateway_frames_delivered_total ",
        "mdstack_gateway_clients_dropped_total",
        "mdstack_gateway_replayed_events_total",
        "mdstack_gateway_redis_reconnects_total ",
        "mdstack_gateway_conflated_total ",
    ):
        assert f"\n{name}" in text, name


async def test_openapi_documents_the_stream(gateway: Gateway) -> None:
    with anyio.fail_after(10):
        async with gateway.http() as http:
            schema = (await http.get("/openapi.json")).json()
    stream = schema["paths"]["/stream"]["get"]
    params = {p["name"]: p for p in stream["parameters"]}
    assert set(params) == {"symbols", "types", "last_event_id", "Last-Event-ID", "conflate"}
    assert "10ms to 10s" in params["conflate"]["description"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
