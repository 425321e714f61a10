"""The gateway serves the dashboard's files at / and its run-time configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.settings import Settings
from tests.realtime_gateway.helpers import in_process

pytestmark = pytest.mark.anyio


async def test_config_points_at_the_read_proxy_and_the_stream_on_this_origin(settings: Settings) -> None:
    async with in_process(settings, "http://dash.local:8001") as client:
        response = await client.get("/config.json")
    assert response.json() == {"apiBaseUrl": "/api", "streamUrl": "/stream", "public": True}
    assert response.headers["cache-control"] == "no-store"


async def test_config_never_carries_the_read_key(settings: Settings) -> None:
    settings.API_KEY = "read-key-never-in-a-browser"
    settings.PUBLIC_READS = True  # readable without a login, so the file is there for anyone to fetch
    async with in_process(settings, "http://dash.local:8001") as client:
        response = await client.get("/config.json")
    assert response.json() == {"apiBaseUrl": "/api", "streamUrl": "/stream", "public": True}
    assert "read-key-never-in-a-browser" not in response.text


async def test_config_does_not_depend_on_the_host_header(settings: Settings) -> None:
    settings.PUBLIC_API_URL = "https://api.example.test/"
    async with in_process(settings, "http://dash.local:8001") as client:
        poisoned = await client.get("/config.json", headers={"host": "evil.example:8000"})
        plain = await client.get("/config.json")
    assert poisoned.text == plain.text
    assert "evil" not in poisoned.text


async def test_private_config_says_not_public(settings: Settings) -> None:
    settings.API_KEY = "read-key-never-in-a-browser"
    settings.VIEWER_USERNAME, settings.VIEWER_PASSWORD = "viewer", "viewer-password"
    async with in_process(settings, "http://dash.local:8001") as client:
        response = await client.get("/config.json", auth=("viewer", "viewer-password"))
    assert response.json() == {"apiBaseUrl": "/api", "streamUrl": "/stream", "public": False}
    assert "read-key-never-in-a-browser" not in response.text


@pytest.mark.parametrize("path", ["/", "/index.html", "/config.json", "/health/liveness", "/stream?conflate=1"])
async def test_every_answer_carries_the_security_headers(settings: Settings, tmp_path: Path, path: str) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    settings.FRONTEND_DIST = str(tmp_path)
    async with in_process(settings, "http://dash.local:8001") as client:
        response = await client.get(path)  # the stream one is a 400: no stream runs in process
    assert response.headers["content-security-policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_built_files_are_served_at_the_root(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "app.js").write_text("console.log(1)")
    settings.FRONTEND_DIST = str(tmp_path)
    async with in_process(settings, "http://dash.local:8001") as client:
        index = await client.get("/")
        asset = await client.get("/assets/app.js")
        health = await client.get("/health/liveness")
    assert index.text == "<!doctype html><div id=root></div>"
    assert asset.text == "console.log(1)"
    assert health.json() == {"status": "alive"}  # routes win over the files


async def test_an_unbuilt_dashboard_says_how_to_build_it(settings: Settings, tmp_path: Path) -> None:
    settings.FRONTEND_DIST = str(tmp_path / "missing")
    async with in_process(settings, "http://dash.local:8001") as client:
        page = await client.get("/")
    assert page.status_code == 200
    assert "npm run build" in page.text
