"""What mdstack's keys hold right now, per family (SCAN + MEMORY USAGE): for the soak bench and the tests.

A full scan costs one round trip per key, so this is a tool for measuring, not
for a hot path: `GET /system` projects from `keys.FAMILIES` instead.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import redis

from services.common.keys import family_of

UNKNOWN = "(unknown)"
SCAN_COUNT = 1000


@dataclass
class FamilyUsage:
    keys: int = 0
    bytes: int = 0
    without_ttl: int = 0
    names: list[str] = field(default_factory=list)  # a few, for a report


def usage(client: redis.Redis, prefix: str, samples: int = 0) -> dict[str, FamilyUsage]:
    """Keys and bytes per family name under `prefix` (keys no family explains under UNKNOWN).

    `samples` is MEMORY USAGE's SAMPLES for aggregates (0 = every element: exact, slower)."""
    out: dict[str, FamilyUsage] = defaultdict(FamilyUsage)
    batch: list[bytes] = []

    def measure() -> None:
        with client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.memory_usage(key, samples=samples)
                pipe.ttl(key)
            results = pipe.execute()
        for key, size, ttl in zip(batch, results[::2], results[1::2], strict=True):
            name = key.decode(errors="replace")
            family = family_of(name, prefix)
            entry = out[family.name if family else UNKNOWN]
            entry.keys += 1
            entry.bytes += int(size or 0)
            entry.without_ttl += ttl == -1
            if len(entry.names) < 3:
                entry.names.append(name)
        batch.clear()

    for key in client.scan_iter(match=f"{prefix}*", count=SCAN_COUNT):
        batch.append(key)
        if len(batch) >= SCAN_COUNT:
            measure()
    if batch:
        measure()
    return dict(out)
