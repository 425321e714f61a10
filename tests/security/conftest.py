"""The real apps in process for the bad-input and security suites.

`api` (the orchestrator with its lifespan, an httpx client authenticated for
ingest) is the shared one of `tests/conftest.py`; `gateway_api` is its gateway
twin. Both run on the test's own Redis prefix and Postgres database. Mark a
test or module with `helpers.BOTH_PATHS` to run it on the ingest fast path
and on the FastAPI router.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.common.settings import Settings
from services.realtime_gateway.app import create_app as create_gateway


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The shared settings, on the ingest path `BOTH_PATHS` picked (the fast path by default)."""
    settings.INGEST_FASTPATH = getattr(request, "param", True)
    return settings


@pytest.fixture
async def gateway_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with its lifespan, in process: for answers that are not streams (ASGITransport buffers)."""
    app = create_gateway(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as client:
            yield client
