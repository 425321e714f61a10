"""CORS on the API and the gateway: the origins of CORS_ORIGINS and no others; none by default (no wildcard)."""

from __future__ import annotations

import httpx
import pytest

from services.common.settings import Settings
from services.orchestrator_api.app import create_app as create_api
from services.realtime_gateway.app import create_app as create_gateway

pytestmark = pytest.mark.anyio
DASHBOARD = "https://dash.example"
FACTORIES = {"api": (create_api, "/symbols"), "gateway": (create_gateway, "/config.json")}


async def preflight_and_get(settings: Settings, service: str, origin: str) -> tuple[httpx.Response, httpx.Response]:
    factory, path = FACTORIES[service]
    app = factory(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://host") as client:
            preflight = await client.options(path, headers={"origin": origin, "access-control-request-method": "GET"})
            get = await client.get(path, headers={"origin": origin})
    return preflight, get


@pytest.mark.parametrize("service", sorted(FACTORIES))
async def test_no_origin_is_allowed_by_default(settings: Settings, service: str) -> None:
    preflight, get = await preflight_and_get(settings, service, DASHBOARD)
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in get.headers


@pytest.mark.parametrize("service", sorted(FACTORIES))
async def test_only_the_listed_origins_are_allowed(settings: Settings, service: str) -> None:
    settings.CORS_ORIGINS = f"{DASHBOARD}, https://other.example"
    preflight, get = await preflight_and_get(settings, service, DASHBOARD)
    assert preflight.headers["access-control-allow-origin"] == DASHBOARD
    assert get.headers["access-control-allow-origin"] == DASHBOARD
    evil_preflight, evil_get = await preflight_and_get(settings, service, "https://evil.example")
    assert evil_preflight.status_code == 400
    assert "access-control-allow-origin" not in evil_preflight.headers
    assert "access-control-allow-origin" not in evil_get.headers
