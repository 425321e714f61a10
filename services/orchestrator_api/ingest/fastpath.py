"""POST /ingest/* and /internal/agg-update straight from ASGI, skipping FastAPI's routing and dependency machinery.

A py-spy profile of single-tick ingest under wrk put about 70% of the API's
time between the first middleware and the endpoint (route matching across
every included route, dependency solving, the middleware chain) and under 10%
in the endpoint. At 100 single-tick POSTs/s the workers' agg-update calls (one
per job) took another fifth of the API's CPU, most of it in the same
machinery. This middleware sits outside FastAPI's own middleware stack (see
`common/outer_app.py`) and answers those paths with the very same credential checks and
endpoint functions (`ingest/routes.py`, `views/routes.py`), which also stay
on the router (for the OpenAPI document, and for `INGEST_FASTPATH=false`),
and with the very same error answers (`errors.response`). On the metrics port
it answers nothing: the stack's `PortSplit` refuses them there.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

import orjson
from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.metrics_port import came_on
from services.orchestrator_api import errors, metrics
from services.orchestrator_api.state import AppState

Check = Callable[[Request], Awaitable[None]]  # the router's credential dependency: raises to refuse
Endpoint = Callable[[Request, AppState], Awaitable[BaseModel]]
Route = tuple[Check, Endpoint]


class IngestFastPath:
    def __init__(self, app: ASGIApp, routes: Mapping[str, Route], metrics_port: int | None = None) -> None:
        self.app = app
        self.routes = routes
        self.metrics_port = metrics_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST" or came_on(scope, self.metrics_port):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        check, endpoint = route
        request = Request(scope, receive)
        response: Response
        try:
            await check(request)
            result = await endpoint(request, request.app.state.mdstack)
            response = Response(orjson.dumps(result.model_dump()), media_type="application/json")
        except errors.HANDLED as exc:
            response = errors.response(exc)
        await response(scope, receive, send)
        metrics.REQUESTS.labels("POST", scope["path"], str(response.status_code)).inc()
        metrics.REQUEST_SECONDS.labels(scope["path"]).observe(time.perf_counter() - started)
