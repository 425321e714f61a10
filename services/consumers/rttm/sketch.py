"""Latency quantiles with DDSketch (1% relative accuracy), stored as Redis hash counters.

A DDSketch is a histogram over logarithmic buckets; merging two is adding
their counts. Keeping each sketch as a Redis hash `bucket index -> count`
makes every update an HINCRBY: atomic, commutative, and exact, so the
quantiles are the same whatever the number of workers or the order of jobs.
The library maps values to bucket indices and reads quantiles back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

from services.consumers.defaults import RELATIVE_ACCURACY

ZERO = "z"  # bucket of values <= 0 (DDSketch's zero count)
MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)


def bucket(value_ms: float) -> str:
    return ZERO if value_ms <= 0 else str(MAPPING.key(value_ms))


def counts(values: Iterable[float]) -> Counter[str]:
    return Counter(bucket(v) for v in values)


def merge(hashes: Iterable[Mapping[Any, Any]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for h in hashes:
        for key, n in h.items():
            total[key.decode() if isinstance(key, bytes) else key] += int(n)
    return total


def quantiles(buckets: Mapping[str, int]) -> dict[str, float | int | None]:
    """p50/p95/p99 (ms, within 1%) and the count of a merged sketch."""
    sketch = DDSketch(RELATIVE_ACCURACY)
    for key, n in buckets.items():
        if n > 0:
            sketch.add(0.0 if key == ZERO else MAPPING.value(int(key)), n)
    if sketch.count == 0:
        return {"p50": None, "p95": None, "p99": None, "count": 0}
    return {
        "p50": round(sketch.get_quantile_value(0.50), 3),
        "p95": round(sketch.get_quantile_value(0.95), 3),
        "p99": round(sketch.get_quantile_value(0.99), 3),
        "count": int(sketch.count),
    }
