"""Every Redis key a run leaves behind either expires or is bounded by what it holds.

A key without a TTL that no pattern below explains is a leak: something that
grows with traffic forever. Used at the end of the fault tests and the RTTM
end-to-end test.
"""

from __future__ import annotations

import re

import redis

from services.common.settings import Settings

# Keys that never expire, and what bounds each (key names: services/common/keys.py).
BOUNDED = {
    r"accepted": "one counter per kind",
    r"backlog": "one counter",
    r"flush": "entries are deleted once in Postgres; INGEST_MAX_BACKLOG bounds the rest",
    r"events": "stream capped at SSE_HISTORY",
    r"symbols": "one member per symbol",
    r"view:[^:]+": "one view per symbol",
    r"sym:[^:]+:.*": "calc-a state per symbol; candles trimmed to CANDLES_KEEP",
    r"rttm:active": "trades silent past RTTM_RETENTION_S are dropped each tick",
    r"rttm:due": "trades leave it once measured",
    r"rttm:q:latest": "one entry per service|topic|partition",
    r"rttm:alerts": "one entry per alert rule",
    r"rttm:stages": "one member per pipeline stage",
}


def unbounded_keys(settings: Settings) -> list[str]:
    """Keys under the run's prefix with no TTL that BOUNDED does not explain."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    patterns = [re.compile(re.escape(settings.KEY_PREFIX) + p + "$") for p in BOUNDED]
    try:
        return sorted(
            key
            for key in client.scan_iter(match=f"{settings.KEY_PREFIX}*", count=5000)
            if client.ttl(key) == -1 and not any(p.match(key) for p in patterns)
        )
    finally:
        client.close()
