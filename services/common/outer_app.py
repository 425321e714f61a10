"""FastAPI with pure ASGI layers outside its whole middleware stack, Starlette's error layer included.

`add_middleware` puts a layer inside Starlette's ServerErrorMiddleware, which
wraps `send` and is passed through on every request. Two layers must be
outside it: the API's ingest fast path (it answers before any layer runs,
orchestrator_api/ingest/fastpath.py) and the gateway's RawSend (it keeps
the server's own `send` for the hub's socket writes, realtime_gateway/direct.py).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from starlette.types import ASGIApp


class OuterApp(FastAPI):
    outer: tuple[Callable[[ASGIApp], ASGIApp], ...] = ()  # wrappers of the built stack, innermost first

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        for wrap in self.outer:
            stack = wrap(stack)
        return stack
