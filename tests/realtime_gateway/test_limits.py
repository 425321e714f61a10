"""Connection limits of GET /stream: per client address and per process, 429 with Retry-After past them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest

from services.common.settings import Settings
from services.realtime_gateway.errors import TooManyReplays
from services.realtime_gateway.limits import ReplayLimits, client_key
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


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),  # the same /64: the same client
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4-mapped: the IPv4 client
        ("testclient", "testclient"),
    ],
)
def test_clients_are_counted_per_ipv4_address_and_per_ipv6_64(host: str, key: str) -> None:
    assert client_key(host) == key


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    start_gateway: Callable[[Settings], Gateway], settings: Settings
) -> None:
    # The test client connects from 127.0.0.1, one of the default TRUSTED_PROXIES: the proxy.
    gateway = start_gateway(settings.model_copy(update={"SSE_MAX_PER_IP": 1}))
    async with gateway.http() as http, AsyncExitStack() as streams:
        for client in ("198.51.100.1", "198.51.100.2", "2001:db8::1"):
            await streams.enter_async_context(open_stream(http, headers={"x-forwarded-for": client}))
        # The proxy appends the peer it saw: the client is the right-most address not of a trusted proxy.
        await streams.enter_async_context(open_stream(http, headers={"x-forwarded-for": "6.6.6.6, 198.51.100.3"}))

        again = await http.get("/stream", headers={"x-forwarded-for": "198.51.100.1"})
        same_64 = await http.get("/stream", headers={"x-forwarded-for": "2001:db8::ffff:2"})
        spoofed = await http.get("/stream", headers={"x-forwarded-for": "198.51.100.1, 198.51.100.3"})

        assert [again.status_code, same_64.status_code, spoofed.status_code] == [429, 429, 429]
        assert "2001:db8::/64 already holds 1 streams" in same_64.json()["detail"]
        assert set(gateway.app.state.gateway.limits.open) == {
            "198.51.100.1",
            "198.51.100.2",
            "2001:db8::/64",
            "198.51.100.3",
        }


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    start_gateway: Callable[[Settings], Gateway], settings: Settings
) -> None:
    gateway = start_gateway(settings.model_copy(update={"SSE_MAX_PER_IP": 1, "TRUSTED_PROXIES": "10.0.0.0/8"}))
    async with gateway.http() as http, open_stream(http, headers={"x-forwarded-for": "198.51.100.1"}):
        refused = await http.get("/stream", headers={"x-forwarded-for": "198.51.100.2"})

        assert refused.status_code == 429
        assert "127.0.0.1 already holds 1 streams" in refused.json()["detail"]


async def test_replays_past_the_per_minute_budget_get_429_with_retry_after(
    start_gateway: Callable[[Settings], Gateway], settings: Settings
) -> None:
    gateway = start_gateway(settings.model_copy(update={"SSE_REPLAYS_PER_MIN": 2}))
    async with gateway.http() as http:
        for _ in range(2):
            async with open_stream(http, "?last_event_id=0-0"):
                pass
        refused = await http.get("/stream?last_event_id=0-0")
        by_header = await http.get("/stream", headers={"Last-Event-ID": "0-0"})
        elsewhere = http.stream("GET", "/stream?last_event_id=0-0", headers={"x-forwarded-for": "198.51.100.9"})
        async with elsewhere as other:
            other_status = other.status_code
        async with open_stream(http):  # without a replay: still served
            pass

    for response in (refused, by_header):
        assert response.status_code == 429
        assert response.headers["retry-after"] == "30"  # 2 a minute: the next one in 30 s
        assert "SSE_REPLAYS_PER_MIN" in response.json()["detail"]
    assert other_status == 200  # another client has its own budget


def test_the_replay_budget_refills_evenly() -> None:
    now = [1000.0]
    limits = ReplayLimits(per_min=6, clock=lambda: now[0])  # one every 10 s
    for _ in range(6):
        limits.take("a")
    with pytest.raises(TooManyReplays) as refused:
        limits.take("a")
    assert refused.value.retry_after_s == 10
    now[0] += 4
    with pytest.raises(TooManyReplays) as still:
        limits.take("a")
    assert still.value.retry_after_s == 6
    now[0] += 6
    limits.take("a")  # one refilled
    limits.take("b")  # others unaffected
    assert ReplayLimits(per_min=0).take("a") is None  # 0: no limit
