"""Every Redis key a run leaves behind belongs to a declared family and keeps to its bound.

The families are declared once, in `services/common/keys.py`. A key that no
family explains, or a key of a TTL-bound family that does not expire, is a
leak: something that grows with traffic forever. Used at the end of the fault
tests, the RTTM end-to-end test and the key budget test.
"""

from __future__ import annotations

import redis

from services.common.keys import family_of
from services.common.settings import Settings


def unbounded_keys(settings: Settings) -> list[str]:
    """Keys under the run's prefix that no family explains, or that should expire and do not."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        out = []
        for key in client.scan_iter(match=f"{settings.KEY_PREFIX}*", count=5000):
            family = family_of(key, settings.KEY_PREFIX)
            if family is None or (family.bound == "ttl" and client.ttl(key) == -1):
                out.append(key)
        return sorted(out)
    finally:
        client.close()
