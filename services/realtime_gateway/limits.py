"""Per-client limits of `/stream`: open connections, and Last-Event-ID replays per minute.

Who the client is: the peer address, or, when the peer is one of
TRUSTED_PROXIES, the address it names in X-Forwarded-For (uvicorn's
ProxyHeadersMiddleware, installed by `app.py` with that list and nothing else:
`mdstack gateway` turns uvicorn's own proxy_headers off so FORWARDED_ALLOW_IPS
cannot widen it). An IPv6 client counts per /64: one host usually holds a
whole /64 and can rotate through it at will.

An EventSource reconnects by itself, so a page opened in many tabs (or a
script in a loop) can pile up connections; each holds a queue of up to
SSE_CLIENT_BUFFER events. Past SSE_MAX_PER_IP from one client, or
SSE_MAX_CLIENTS in all, `/stream` answers 429 with Retry-After.

A replay (`Last-Event-ID` or `?last_event_id=`) reads and re-parses up to
SSE_HISTORY events from Redis; `0-0` on every connect would make each one
replay the whole history. A client gets SSE_REPLAYS_PER_MIN of them per
minute (a token bucket: the budget refills evenly), then 429 with the seconds
until the next one in Retry-After.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import Counter
from collections.abc import Callable

from services.realtime_gateway import metrics
from services.realtime_gateway.defaults import IPV6_CLIENT_PREFIX, MAX_TRACKED
from services.realtime_gateway.errors import TooManyReplays, TooManyStreams


def client_key(host: str) -> str:
    """What the limits count by: the IPv4 address, or the IPv6 /64 (an IPv4-mapped IPv6 address is its IPv4)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an IP (a unix socket, a test client): itself
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


class StreamLimits:
    def __init__(self, per_ip: int, total: int) -> None:
        self.per_ip = per_ip
        self.total = total
        self.open: Counter[str] = Counter()

    def acquire(self, client: str) -> None:
        """Count one more stream from `client` (a `client_key`), or raise TooManyStreams (429) naming the limit."""
        if self.total and sum(self.open.values()) >= self.total:
            metrics.REFUSED.labels("max_clients").inc()
            raise TooManyStreams(f"the gateway holds {self.total} streams (SSE_MAX_CLIENTS); retry later")
        if self.per_ip and self.open[client] >= self.per_ip:
            metrics.REFUSED.labels("max_per_ip").inc()
            raise TooManyStreams(f"{client} already holds {self.per_ip} streams (SSE_MAX_PER_IP); close one first")
        self.open[client] += 1

    def release(self, client: str) -> None:
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]


class PerMinute:
    """A token bucket per client: `per_min` tokens, refilled evenly at `per_min` a minute; 0 = no limit."""

    def __init__(self, per_min: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_min = per_min
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def wait_s(self, client: str) -> int:
        """0 if `client` has a token now, else the seconds until it has one."""
        if not self.per_min:
            return 0
        tokens = self._tokens(client, self.clock())
        return 0 if tokens >= 1.0 else math.ceil((1.0 - tokens) * 60.0 / self.per_min)

    def spend(self, client: str) -> None:
        if not self.per_min:
            return
        now = self.clock()
        self.buckets[client] = (max(0.0, self._tokens(client, now) - 1.0), now)
        if len(self.buckets) > MAX_TRACKED:
            self._forget_full(now)
            if len(self.buckets) > MAX_TRACKED:  # that many clients at once: start over rather than grow
                self.buckets.clear()

    def _tokens(self, client: str, now: float) -> float:
        tokens, at = self.buckets.get(client, (float(self.per_min), now))
        return min(float(self.per_min), tokens + (now - at) * self.per_min / 60.0)

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: they are the same as no entry."""
        self.buckets = {c: v for c, v in self.buckets.items() if self._tokens(c, now) < self.per_min}


class ReplayLimits(PerMinute):
    """SSE_REPLAYS_PER_MIN Last-Event-ID replays per client."""

    def take(self, client: str) -> None:
        """Spend one replay of `client`, or raise TooManyReplays (429) with the seconds until the next one."""
        wait = self.wait_s(client)
        if wait:
            metrics.REFUSED.labels("replays_per_min").inc()
            raise TooManyReplays(
                f"{client} replayed {self.per_min} times in the last minute (SSE_REPLAYS_PER_MIN); "
                f"retry in {wait} s, or connect without Last-Event-ID",
                retry_after_s=wait,
            )
        self.spend(client)
