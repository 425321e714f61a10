"""The browser dashboard: its built files at `/` and its run-time configuration at `/config.json`.

The dashboard is built once (`frontend/`, `npm run build`) and learns where
the API and the stream are from `config.json` at start, so the same build
works here, behind a proxy, or on a static host that ships its own file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from services.common.settings import Settings

REPO_DIST = Path(__file__).resolve().parents[2] / "frontend" / "dist"
NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>mdstack</title>
<p>The dashboard is not built. Run <code>make demo</code>, or <code>cd frontend && npm ci && npm run build</code>.
The stream is at <a href="stream">/stream</a>.</p>"""


def dist_dir(settings: Settings) -> Path:
    return Path(settings.FRONTEND_DIST) if settings.FRONTEND_DIST else REPO_DIST


def client_config(settings: Settings, request: Request) -> dict[str, Any]:
    """Where the page finds the API (same host, API port, unless PUBLIC_API_URL says otherwise) and the stream."""
    api = settings.PUBLIC_API_URL or f"{request.url.scheme}://{request.url.hostname}:{settings.API_PORT}"
    return {"apiBaseUrl": api.rstrip("/"), "streamUrl": "/stream", "apiKey": settings.API_KEY}


def mount(app: FastAPI, settings: Settings) -> None:
    """Add `/config.json` and the dashboard; call after every other route (the files are mounted at `/`)."""

    @app.get("/config.json", tags=["dashboard"])
    async def config(request: Request) -> dict[str, Any]:
        """The dashboard's run-time configuration."""
        return client_config(settings, request)

    dist = dist_dir(settings)
    if (dist / "index.html").exists():
        app.mount("/", StaticFiles(directory=dist, html=True), name="dashboard")
    else:

        @app.get("/", include_in_schema=False)
        async def not_built() -> HTMLResponse:
            return HTMLResponse(NOT_BUILT)
