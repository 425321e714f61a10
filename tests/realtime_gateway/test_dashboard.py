"""The gateway serves the dashboard's files at / and its run-time configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from services.common.settings import Settings
from services.realtime_gateway.app import create_app

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://dash.local:8001") as client:
            yield client


async def test_config_points_at_the_api_on_the_same_host(settings: Settings) -> None:
    async with client_for(settings) as client:
        config = (await client.get("/config.json")).json()
    assert config == {"apiBaseUrl": "http://dash.local:8000", "streamUrl": "/stream", "apiKey": None}


async def test_config_carries_the_public_api_url_and_read_key(settings: Settings) -> None:
    settings.PUBLIC_API_URL = "https://api.example.test/"
    settings.API_KEY = "read-key"
    async with client_for(settings) as client:
        config = (await client.get("/config.json")).json()
    assert config == {"apiBaseUrl": "https://api.example.test", "streamUrl": "/stream", "apiKey": "read-key"}


async def test_built_files_are_served_at_the_root(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "app.js").write_text("console.log(1)")
    settings.FRONTEND_DIST = str(tmp_path)
    async with client_for(settings) as client:
        index = await client.get("/")
        asset = await client.get("/assets/app.js")
        health = await client.get("/health/liveness")
    assert index.text == "<!doctype html><div id=root></div>"
    assert asset.text == "console.log(1)"
    assert health.json() == {"status": "alive"}  # routes win over the files


async def test_an_unbuilt_dashboard_says_how_to_build_it(settings: Settings, tmp_path: Path) -> None:
    settings.FRONTEND_DIST = str(tmp_path / "missing")
    async with client_for(settings) as client:
        page = await client.get("/")
    assert page.status_code == 200
    assert "npm run build" in page.text
