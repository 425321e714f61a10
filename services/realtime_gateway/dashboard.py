"""The browser dashboard: its built files at `/` and its run-time configuration at `/config.json`.

The dashboard is built once (`frontend/`, `npm run build`) and learns where
the API and the stream are from `config.json` at start, so the same build
works here, behind a proxy, or on a static host that ships its own file.
Served by the gateway, both are on its own origin: the API through the read
proxy `/api` (proxy.py), which holds the read key, so the file carries no
secret and nothing taken from the request (a Host header must not end up in
a cacheable answer). Both are behind the viewer login when reads are private.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from services.common.settings import Settings
from services.realtime_gateway.viewer import LOGIN_REFUSED, Guarded, ViewerLogin, require_viewer

REPO_DIST = Path(__file__).resolve().parents[2] / "frontend" / "dist"
NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>mdstack</title>
<p>The dashboard is not built. Run <code>make demo</code>, or <code>cd frontend && npm ci && npm run build</code>.
The stream is at <a href="stream">/stream</a>.</p>"""


def dist_dir(settings: Settings) -> Path:
    return Path(settings.FRONTEND_DIST) if settings.FRONTEND_DIST else REPO_DIST


def client_config(settings: Settings) -> dict[str, Any]:
    """The API (the read proxy) and the stream, on this origin; `public`: the banner says anyone can read."""
    return {"apiBaseUrl": "/api", "streamUrl": "/stream", "public": settings.reads_are_public}


def mount(app: FastAPI, settings: Settings, login: ViewerLogin) -> None:
    """Add `/config.json` and the dashboard; call after every other route (the files are mounted at `/`)."""

    @app.get("/config.json", tags=["dashboard"], dependencies=[Depends(require_viewer)], responses=LOGIN_REFUSED)
    async def config(response: Response) -> dict[str, Any]:
        """The dashboard's run-time configuration: no secret, the same for every caller."""
        response.headers["cache-control"] = "no-store"
        return client_config(settings)

    dist = dist_dir(settings)
    if (dist / "index.html").exists():
        app.mount("/", Guarded(StaticFiles(directory=dist, html=True), login), name="dashboard")
    else:

        @app.get("/", include_in_schema=False, dependencies=[Depends(require_viewer)])
        async def not_built() -> HTMLResponse:
            return HTMLResponse(NOT_BUILT)
