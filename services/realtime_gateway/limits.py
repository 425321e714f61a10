"""How many `/stream` connections one client address, and the whole process, may hold at once.

An EventSource reconnects by itself, so a page opened in many tabs (or a
script in a loop) can pile up connections; each holds a queue of up to
SSE_CLIENT_BUFFER events. Past SSE_MAX_PER_IP from one address, or
SSE_MAX_CLIENTS in all, `/stream` answers 429 with Retry-After. Behind a
proxy the address is the one uvicorn takes from X-Forwarded-For (its
`--forwarded-allow-ips`).
"""

from __future__ import annotations

from collections import Counter

from services.realtime_gateway import metrics
from services.realtime_gateway.errors import TooManyStreams


class StreamLimits:
    def __init__(self, per_ip: int, total: int) -> None:
        self.per_ip = per_ip
        self.total = total
        self.open: Counter[str] = Counter()

    def acquire(self, ip: str) -> None:
        """Count one more stream from `ip`, or raise TooManyStreams (429) naming the limit."""
        if self.total and sum(self.open.values()) >= self.total:
            metrics.REFUSED.labels("max_clients").inc()
            raise TooManyStreams(f"the gateway holds {self.total} streams (SSE_MAX_CLIENTS); retry later")
        if self.per_ip and self.open[ip] >= self.per_ip:
            metrics.REFUSED.labels("max_per_ip").inc()
            raise TooManyStreams(f"{ip} already holds {self.per_ip} streams (SSE_MAX_PER_IP); close one first")
        self.open[ip] += 1

    def release(self, ip: str) -> None:
        self.open[ip] -= 1
        if self.open[ip] <= 0:
            del self.open[ip]
