"""Connection limits of GET /stream: per client address and per process, 429 with Retry-After past them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest

from services.common.settings import Settings
from tests.realtime_gateway.helpers import Gateway, open_stream, wait_until

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("limit", "named"), [({"SSE_MAX_PER_IP": 2}, "SSE_MAX_PER_IP"), ({"SSE_MAX_CLIENTS": 2}, "SSE_MAX_CLIENTS")]
)
async def test_a_stream_past_the_limit_gets_429_until_one_closes(
    start_gateway: Callable[[Settings], Gateway], settings: Settings, limit: dict[str, int], named: str
) -> None:
    gateway = start_gateway(settings.model_copy(update=limit))
    async with gateway.http() as http:
        async with AsyncExitStack() as streams:
            for _ in range(2):
                await streams.enter_async_context(open_stream(http))

            refused = await http.get("/stream")

            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "5"
            assert named in refused.json()["detail"]
        limits = gateway.app.state.gateway.limits
        await wait_until(lambda: not limits.open)  # both closed: their places are free again
        async with open_stream(http):
            assert sum(limits.open.values()) == 1
