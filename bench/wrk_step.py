"""One open-loop step of batch POSTs driven by wrk (bench/wrk_batches.py), figured as `run_step` figures a
feeder's: the same keys, plus the generator's own CPU and what wrk saw (`generator`).

Acknowledged ticks are known one by one (the script reports which requests were answered 2xx, and each
request's event_ids follow from its number), so "in Postgres exactly once" is checked per event_id as for
the feeder. The ack latency is counted from each request's scheduled send time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

from bench.tick_path import (
    ViewListener,
    backlog_figures,
    catch_up,
    db_count,
    db_rows,
    latency_figures,
    sample_backlog,
    ticks_in_views,
)
from bench.wrk_batches import run_batches
from harness.stack import Stack

if TYPE_CHECKING:  # bench.cost runs its batch steps through here (bench.latency.step)
    from bench.cost import CpuMeter

CONNECTIONS = 128  # wrk threads, one connection each: room for 128 requests in flight before a send waits


async def cores_while(meter: CpuMeter, seconds: float) -> float:
    """Cores the stack kept busy over the next `seconds`."""
    before = await asyncio.to_thread(meter.read)
    await asyncio.sleep(seconds)
    after = await asyncio.to_thread(meter.read)
    return round(sum(after[name] - before.get(name, 0.0) for name in after) / seconds, 3)


def generator_errors(figures: dict[str, Any]) -> int:
    """Requests that did not end in a 2xx answer, and ticks the API took for duplicates (ids are unique).

    Not wrk's socket errors as such: wrk counts the server closing an idle keep-alive connection as a read
    error (uvicorn does after 5 s, e.g. while wrk waits out its last seconds at a low rate) and reconnects; a
    request lost that way is sent and not answered, so `unanswered` holds it.
    """
    return figures["non_2xx"] + figures["unanswered"] + figures["duplicates"]


async def wrk_step(
    stack: Stack,
    listener: ViewListener,
    *,
    tps: float,
    batch: int,
    duration: float,
    tag: str,
    connections: int = CONNECTIONS,
    meter: CpuMeter | None = None,
) -> dict[str, Any]:
    """wrk at `tps` ticks/s in POSTs of `batch` for `duration` s on a running stack; figures for its ticks.
    With `meter`, also the cores the stack kept busy while wrk was sending, beside wrk's own."""
    settings = stack.settings
    run_id = f"{tag}-{uuid.uuid4().hex[:8]}"
    views_before, ticks_before = listener.count(), await ticks_in_views(stack.api_url)
    load = asyncio.to_thread(
        run_batches,
        stack.api_url,
        settings.INGEST_USERNAME,
        settings.INGEST_PASSWORD,
        tps=tps,
        batch=batch,
        seconds=duration,
        connections=connections,
        run_id=run_id,
        log=stack.log_dir / f"wrk-{tag}.log",
    )
    stack_cores = asyncio.create_task(cores_while(meter, duration)) if meter else None
    (figures, acked), samples = await sample_backlog(settings, load)
    fed = time.monotonic()
    caught_up = await catch_up(stack.api_url, lambda: db_count(settings, acked), len(acked), ticks_before, fed)
    await asyncio.sleep(1.0)  # the last views reach the SSE listener
    rows = await asyncio.to_thread(db_rows, settings, acked)
    distinct = len({r[0] for r in rows})
    return {
        "tps_target": tps,
        "batch": batch,
        "duration_s": duration,
        "generator": "wrk",
        "connections": connections,
        "sent": figures["sent_ticks"],
        "acknowledged": len(acked),
        "generator_errors": generator_errors(figures),
        "achieved_tps": round(len(acked) / duration),
        "persisted": len(rows),
        "duplicates_in_postgres": len(rows) - distinct,
        "acknowledged_missing_in_postgres": len(set(acked)) - distinct,
        "catch_up_s": None if caught_up is None else round(caught_up, 2),
        **backlog_figures(samples),
        "views_received": listener.count() - views_before,
        "ack_latency_ms": figures.pop("ack_latency_ms"),
        **latency_figures(listener, rows),
        "stack_cores_while_sending": await stack_cores if stack_cores else None,
        "wrk": figures,
    }
