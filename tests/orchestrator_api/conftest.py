from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.common.settings import Settings
from services.orchestrator_api.app import create_app


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with its lifespan, in process; authenticated for ingest."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", auth=(settings.INGEST_USERNAME, settings.INGEST_PASSWORD)
        ) as client:
            yield client
