"""The one percentile function of tests and benchmarks (the product's own sketches live in services/)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max, rounded to 0.01; None for no values. `statistics.quantiles` with the
    inclusive method: the sample is taken as the whole population, so a cut never lies outside it."""
    ordered = sorted(values)
    if len(ordered) < 2:  # statistics.quantiles wants two points before Python 3.13
        only = round(ordered[0], 2) if ordered else None
        return {"p50": only, "p95": only, "p99": only, "max": only}
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    p50, p95, p99 = (round(cuts[i], 2) for i in (49, 94, 98))
    return {"p50": p50, "p95": p95, "p99": p99, "max": round(ordered[-1], 2)}
