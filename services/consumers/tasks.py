"""The RQ job: every batch waiting (up to JOB_MAX_ITEMS items) through calc-a and calc-b, the views of every
symbol they touched posted to the API in one call; then, as the drainer, the same again on the cadence while
batches keep coming (drain.py).

A job is `process_batch(batch_id)`, enqueued with the commit of its batch, but the API enqueues one only every
JOB_CADENCE_MS (commit.py): the job claims its own batch and the oldest pending ones (`claim.lua`), so the
number of jobs, view computations, API calls and view publishes follows that cadence, not the request rate.

Safe to run twice: a retry of a job (same id) takes the batches it claimed before; calc-a and the RTTM fold
apply a batch once (a re-run only reads the state back), and the API keeps only the newest version of each
view.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

import orjson
import redis
from rq import get_current_job

from services.common.jobs import enqueue_batch_job, job_queue
from services.common.keys import BATCH_TTL_S, Keys
from services.common.kinds import RTTM_POSTED
from services.common.logging import get_logger
from services.common.schemas import TickRecord
from services.common.scripts import register
from services.common.settings import Settings
from services.consumers import context, drain, metrics, windows
from services.consumers.defaults import WINDOWS_CALL_TICKS
from services.consumers.rttm import apply as rttm_apply
from services.consumers.view import build_view
from services.consumers.windows import SymbolState

log = get_logger(__name__)


def process_batch(batch_id: str) -> dict[str, int]:
    ctx = context.get()
    keys = Keys(ctx.settings.KEY_PREFIX)
    started = time.perf_counter()
    job_id = _job_id(batch_id)
    done = drain_round(ctx, keys, job_id, batch_id)
    if not done.batches:  # a job whose batches an earlier one took (or all duplicates): nothing to do
        metrics.JOBS.labels("empty").inc()
        return {"rounds": 1, "batches": 0, "ticks": 0, "views": 0}
    # Later rounds have no batch of their own (the job id names none): they take what is pending.
    done += drain.drain(ctx, job_id, done, lambda: drain_round(ctx, keys, job_id, job_id))
    metrics.JOBS.labels("ok").inc()
    metrics.JOB_SECONDS.observe(time.perf_counter() - started)
    return {"rounds": done.rounds, "batches": done.batches, "ticks": done.ticks, "views": done.views}


def drain_round(ctx: context.WorkerContext, keys: Keys, job_id: str, batch_id: str) -> drain.Done:
    """One round: the batches claimed (`batch_id`'s and the oldest pending), calc-a, calc-b, the views posted."""
    started = time.perf_counter()
    batch_ids = claim(ctx.redis, ctx.settings, job_id, batch_id)
    if not batch_ids:
        return drain.Done(rounds=1)
    with ctx.redis.pipeline(transaction=False) as pipe:
        for b in batch_ids:
            pipe.hget(keys.batch(b), "items")
        raws = pipe.execute()
    now_ms = time.time() * 1000.0
    tick_batches: list[tuple[str, list[TickRecord]]] = []
    ticks_by_symbol: dict[str, list[TickRecord]] = defaultdict(list)
    ticks = items_taken = 0
    for b, raw in zip(batch_ids, raws, strict=True):
        if raw is None:  # expired unread, or dropped: its items are in Postgres all the same
            continue
        items: dict[str, list] = orjson.loads(raw)
        items_taken += sum(map(len, items.values()))
        if rttm_apply.has_rttm(items) and rttm_apply.apply(ctx.redis, ctx.settings, b, items, now_ms):
            count_rttm(items)  # once: a retried job applies nothing
        if batch_ticks := items.get("tick"):
            ticks += len(batch_ticks)
            tick_batches.append((b, batch_ticks))
            for tick in batch_ticks:
                ticks_by_symbol[tick["symbol"]].append(tick)
    states = apply_windows(ctx, tick_batches)
    views = post_views(ctx, states, ticks_by_symbol) if states else 0
    release(ctx, keys, job_id, batch_ids)
    full = items_taken >= ctx.settings.JOB_MAX_ITEMS and bool(ctx.redis.zcard(keys.pending))
    if full and not (queue := job_queue(ctx.settings, ctx.redis)).count:
        # More waited than one round takes: a job now (one queued at a time), so both workers share it.
        enqueue_batch_job(queue, ctx.settings, uuid.uuid4().hex)
    metrics.TICKS.inc(ticks)
    metrics.ROUND_SECONDS.observe(time.perf_counter() - started)
    log.debug("worker.batch_done", trace_id=job_id, batches=len(batch_ids), ticks=ticks, views=views)
    return drain.Done(rounds=1, batches=len(batch_ids), ticks=ticks, views=views, full=full)


def apply_windows(ctx: context.WorkerContext, batches: list[tuple[str, list[TickRecord]]]) -> list[SymbolState]:
    """calc-a over the job's batches, each applied once: a call per slice of WINDOWS_CALL_TICKS ticks rather
    than per batch; the newest state of each symbol (it holds every batch)."""
    states: dict[str, SymbolState] = {}
    start = 0
    while start < len(batches):
        end, size = start, 0
        while end < len(batches) and (end == start or size + len(batches[end][1]) <= WINDOWS_CALL_TICKS):
            size += len(batches[end][1])
            end += 1
        for state in windows.apply_many(ctx.redis, ctx.settings, batches[start:end]):
            if state.symbol not in states or state.version > states[state.symbol].version:
                states[state.symbol] = state
        start = end
    return list(states.values())


def _job_id(batch_id: str) -> str:
    """The running RQ job's id (the batch id it was enqueued with), or the batch id when called directly."""
    job = get_current_job()
    return job.id if job is not None else batch_id


def claim(client: redis.Redis, settings: Settings, job_id: str, batch_id: str) -> list[str]:
    """The batches job `job_id` works on (see claim.lua): the same ones again on a retry."""
    keys = Keys(settings.KEY_PREFIX)
    script = register(client, "claim", __package__)
    budget, ttl = settings.JOB_MAX_ITEMS, BATCH_TTL_S
    ids = script(
        keys=[keys.pending, keys.claims(job_id), keys.batch(batch_id)], args=[budget, keys.batch(""), ttl, job_id]
    )
    return [i.decode() if isinstance(i, bytes) else i for i in ids]


def release(ctx: context.WorkerContext, keys: Keys, job_id: str, batch_ids: list[str]) -> None:
    """The job is over: its batches go (their items off the queued count), then its claims."""
    done = register(ctx.redis, "batch_done", __package__)
    done(keys=[*(keys.batch(b) for b in batch_ids), keys.queued])  # one call for all: no SCRIPT EXISTS either
    ctx.redis.delete(keys.claims(job_id))


def forget_batch(batch_id: str) -> None:
    """A job that failed for good drops its batches: the items are in Postgres; only their views are lost,
    and the next tick of each symbol brings its view up to date."""
    ctx = context.get()
    keys = Keys(ctx.settings.KEY_PREFIX)
    job_id = _job_id(batch_id)
    claimed = [b.decode() for b in ctx.redis.smembers(keys.claims(job_id))]  # type: ignore[union-attr]
    release(ctx, keys, job_id, sorted({batch_id, *claimed}))


def count_rttm(items: dict[str, list]) -> None:
    for kind in RTTM_POSTED:
        metrics.RTTM_EVENTS.labels(kind).inc(len(items.get(kind, [])))
    for e in items.get("dlq", []):
        metrics.RTTM_DLQ.labels(*metrics.RTTM_DLQ_LABELS(e["service_name"])).inc()
    for e in items.get("error", []):
        metrics.RTTM_ERRORS.labels(*metrics.RTTM_ERRORS_LABELS(e["service_name"], e["error_type"])).inc()


def post_views(
    ctx: context.WorkerContext, states: list[SymbolState], ticks_by_symbol: dict[str, list[TickRecord]]
) -> int:
    """calc-b for each symbol, and every view to the API in one call; returns how many views were posted."""
    now_ms = time.time() * 1000.0
    updates = []
    for state in states:
        view = build_view(state, ticks_by_symbol[state.symbol], now_ms)
        metrics.VIEW_LATENCY.observe(view["latency_ms"] / 1000.0)
        updates.append({"symbol": state.symbol, "view": view, "ts": view["ts"]})
    response = ctx.http.post("/internal/agg-update", content=orjson.dumps(updates))
    response.raise_for_status()
    return len(updates)
