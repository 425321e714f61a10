"""Prometheus metrics of the API process.

Queue figures (RQ registries, flush backlog) are read from Redis at scrape
time, so they are right whichever process did the work.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from services.common.keys import FLUSH_GROUP, Keys
from services.common.settings import Settings

REQUESTS = Counter("mdstack_http_requests_total", "HTTP requests", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "mdstack_http_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
INGEST_ITEMS = Counter("mdstack_ingest_items_total", "Items seen by ingest", ["kind", "outcome"])
COMMIT_SECONDS = Histogram(
    "mdstack_ingest_commit_seconds",
    "Group commit round trip to Redis",
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
COMMIT_TICKS = Histogram(
    "mdstack_ingest_commit_ticks",
    "Ticks per group commit (= per RQ job)",
    buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 5000),
)
COMMIT_ERRORS = Counter("mdstack_ingest_commit_errors_total", "Group commits that failed (requests got 503)")
REFUSED = Counter(
    "mdstack_ingest_refused_total", "Items refused by back-pressure (429/503 with Retry-After)", ["reason"]
)
BACKLOG = Gauge("mdstack_ingest_backlog_items", "Accepted items not yet in Postgres (INGEST_MAX_BACKLOG bounds it)")
QUEUED_ITEMS = Gauge("mdstack_ingest_queued_items", "Accepted items whose job has not ended (INGEST_MAX_QUEUED_ITEMS)")
VIEWS = Counter("mdstack_views_total", "Views posted by workers", ["outcome"])

QUEUE_JOBS = Gauge("mdstack_queue_jobs", "RQ jobs by registry", ["queue", "state"])
FLUSH_BACKLOG = Gauge("mdstack_flush_backlog_batches", "Batches waiting for the flusher", ["state"])


async def queue_figures(client, settings: Settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """RQ's registries and the flush stream, in one round trip."""
    name = settings.QUEUE_NAME
    keys = Keys(settings.KEY_PREFIX)
    registries = {
        "started": StartedJobRegistry.key_template.format(name),
        "failed": FailedJobRegistry.key_template.format(name),
        "scheduled": ScheduledJobRegistry.key_template.format(name),
    }
    async with client.pipeline(transaction=False) as pipe:
        pipe.llen(Queue.redis_queue_namespace_prefix + name)
        for key in registries.values():
            pipe.zcard(key)
        pipe.xlen(keys.flush_stream)
        pipe.xpending(keys.flush_stream, FLUSH_GROUP)
        pipe.get(keys.backlog)
        pipe.get(keys.queued)
        results = await pipe.execute(raise_on_error=False)
    pending = results[5]
    return {
        "queue": {"queued": _number(results[0])}
        | {s: _number(v) for s, v in zip(registries, results[1:4], strict=True)},
        "flush_backlog": _number(results[4]),
        "flush_in_flight": pending.get("pending", 0) if isinstance(pending, dict) else 0,
        "unflushed_items": _count(results[6]),
        "queued_items": _count(results[7]),
    }


async def refresh_queue_gauges(client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    figures = await queue_figures(client, settings)
    for state, value in figures["queue"].items():
        QUEUE_JOBS.labels(settings.QUEUE_NAME, state).set(value)
    FLUSH_BACKLOG.labels("stream").set(figures["flush_backlog"])
    FLUSH_BACKLOG.labels("in_flight").set(figures["flush_in_flight"])
    BACKLOG.set(figures["unflushed_items"])
    QUEUED_ITEMS.set(figures["queued_items"])


def _count(value: object) -> int:
    """A counter read with GET (bytes), or 0 when it is missing or the read failed."""
    return int(value) if isinstance(value, bytes | str) else 0


def _number(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0
