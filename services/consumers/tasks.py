"""The RQ job: one group commit of ticks through calc-a and calc-b, views posted to the API.

Safe to run twice: calc-a applies a batch once (a re-run only reads the state
back), and the API keeps only the newest version of each view.
"""

from __future__ import annotations

import time
from collections import defaultdict

import orjson

from services.common.keys import Keys
from services.common.kinds import RTTM_POSTED
from services.common.logging import get_logger
from services.common.schemas import TickRecord
from services.common.scripts import register
from services.consumers import context, metrics, windows
from services.consumers.rttm import apply as rttm_apply
from services.consumers.view import build_view

log = get_logger(__name__)


def process_batch(batch_id: str) -> dict[str, int]:
    ctx = context.get()
    keys = Keys(ctx.settings.KEY_PREFIX)
    started = time.perf_counter()
    raw = ctx.redis.hget(keys.batch(batch_id), "items")
    if raw is None:  # every tick was a duplicate, or an earlier run finished
        metrics.JOBS.labels("empty").inc()
        return {"ticks": 0, "views": 0}
    items: dict[str, list] = orjson.loads(raw)
    ticks: list[TickRecord] = items.get("tick", [])
    if rttm_apply.has_rttm(items) and rttm_apply.apply(ctx.redis, ctx.settings, batch_id, items, time.time() * 1000.0):
        count_rttm(items)  # once: a retried job applies nothing
    views = post_views(ctx, batch_id, ticks) if ticks else 0
    drop_batch(ctx, batch_id)
    metrics.JOBS.labels("ok").inc()
    metrics.TICKS.inc(len(ticks))
    metrics.JOB_SECONDS.observe(time.perf_counter() - started)
    log.debug("worker.batch_done", trace_id=batch_id, ticks=len(ticks), views=views)
    return {"ticks": len(ticks), "views": views}


def forget_batch(batch_id: str) -> None:
    """A job that failed for good drops its batch: the items are in Postgres; only their views are lost,
    and the next tick of each symbol brings its view up to date."""
    drop_batch(context.get(), batch_id)


def drop_batch(ctx: context.WorkerContext, batch_id: str) -> None:
    """Delete the batch and take its items off the queued count (once, however often it runs)."""
    keys = Keys(ctx.settings.KEY_PREFIX)
    register(ctx.redis, "batch_done", __package__)(keys=[keys.batch(batch_id), keys.queued])


def count_rttm(items: dict[str, list]) -> None:
    for kind in RTTM_POSTED:
        metrics.RTTM_EVENTS.labels(kind).inc(len(items.get(kind, [])))
    for e in items.get("dlq", []):
        metrics.RTTM_DLQ.labels(*metrics.RTTM_DLQ_LABELS(e["service_name"])).inc()
    for e in items.get("error", []):
        metrics.RTTM_ERRORS.labels(*metrics.RTTM_ERRORS_LABELS(e["service_name"], e["error_type"])).inc()


def post_views(ctx: context.WorkerContext, batch_id: str, ticks: list[TickRecord]) -> int:
    """calc-a, calc-b, and the views to the API; returns how many views were posted."""
    states = windows.apply(ctx.redis, ctx.settings, batch_id, ticks)
    by_symbol: dict[str, list[TickRecord]] = defaultdict(list)
    for tick in ticks:
        by_symbol[tick["symbol"]].append(tick)
    now_ms = time.time() * 1000.0
    updates = []
    for state in states:
        view = build_view(state, by_symbol[state.symbol], now_ms)
        metrics.VIEW_LATENCY.observe(view["latency_ms"] / 1000.0)
        updates.append({"symbol": state.symbol, "view": view, "ts": view["ts"]})
    response = ctx.http.post("/internal/agg-update", content=orjson.dumps(updates))
    response.raise_for_status()
    return len(updates)
