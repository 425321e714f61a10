"""End-to-end runs of the tick path with real processes at fixed open-loop rates, and what they delivered.

    python -m bench.tick_path --duration 20 --tps 1000 [--batch 10] [--workers 2] [--json out.json]

Starts the API, N workers, the flusher and the gateway (on REDIS_URL / PG_URL,
or on embedded servers when unset; a scratch database and key prefix either
way), listens on the gateway's SSE stream, runs the feeder, waits until
Postgres and the views have caught up, and reports:

- ticks sent, acknowledged, persisted, duplicated in Postgres (must be 0);
- `symbol.updated` events received over SSE, per symbol;
- latency p50/p95/p99/max, every one measured from the tick's scheduled send
  time (the feeder stamps `ts` with it, so a feeder that falls behind its
  schedule shows up as latency: coordinated omission avoided):
  ack (the feeder's), tick→SSE (when the first `symbol.updated` covering the
  tick reached the SSE listener) and tick→Postgres (`inserted_at - ts`);
- catch-up: seconds from the feeder's end until every acknowledged tick was in
  Postgres and in the views, and the backlog (RQ jobs queued, flush batches
  waiting) sampled while the feeder ran.

`run_step` is the engine of `bench.latency` and `bench.ceiling` too. All
traffic stays on loopback; every run is bounded by its duration plus a drain timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import redis.asyncio as aioredis
from rq import Queue

from harness.percentiles import percentiles
from harness.sse import SSEReader, fields
from harness.stack import Stack, bench_settings, report
from services.common.keys import Keys
from services.common.settings import Settings

DRAIN_TIMEOUT_S = 60.0
BACKLOG_SAMPLE_S = 0.5


class ViewListener:
    """One SSE client on `symbol.updated`: per symbol, (view ts, arrival ms) in arrival order."""

    def __init__(self, gateway_url: str) -> None:
        self.url = f"{gateway_url}/stream"
        self.arrivals: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.task: asyncio.Task[None] | None = None
        self._open = contextlib.AsyncExitStack()

    async def __aenter__(self) -> ViewListener:
        client = await self._open.enter_async_context(httpx.AsyncClient(timeout=None))
        response = await self._open.enter_async_context(
            client.stream("GET", self.url, params={"types": "symbol.updated"})
        )
        reader = SSEReader(response)
        async with asyncio.timeout(30):
            await reader.connected()  # subscribed before the first tick
        self.task = asyncio.create_task(self._listen(reader))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self._open.aclose()

    async def _listen(self, reader: SSEReader) -> None:
        while True:
            event = orjson.loads(fields(await reader.event())["data"])
            self.arrivals[event["symbol"]].append((event["data"]["view"]["ts"], time.time() * 1000.0))

    def count(self) -> int:
        return sum(len(v) for v in self.arrivals.values())

    def tick_to_view_ms(self, ticks: list[tuple[str, float]]) -> list[float]:
        """Per tick (symbol, ts): arrival of the first view whose newest tick is at least as new, minus ts."""
        out = []
        for symbol, views in self.arrivals.items():
            # A view's ts only grows per symbol, except when concurrent batches interleave: keep the running max.
            newest, arrivals = [], []
            for ts, arrived in views:
                if newest and ts <= newest[-1]:
                    continue
                newest.append(ts)
                arrivals.append(arrived)
            for tick_symbol, ts in ticks:
                if tick_symbol == symbol:
                    i = bisect.bisect_left(newest, ts)
                    if i < len(newest):
                        out.append(arrivals[i] - ts)
        return out


async def backlog(client: aioredis.Redis, settings: Settings) -> tuple[int, int]:
    """RQ jobs queued and flush batches waiting, in one round trip."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.llen(Queue.redis_queue_namespace_prefix + settings.QUEUE_NAME)
        pipe.xlen(Keys(settings.KEY_PREFIX).flush_stream)
        jobs, batches = await pipe.execute()
    return int(jobs), int(batches)


def db_rows(settings: Settings, acked: list[str]) -> list[tuple[str, str, float, float]]:
    """(event_id, symbol, ts ms, inserted_at - ts ms) of the acknowledged ticks found in Postgres."""
    with psycopg.connect(settings.pg_dsn) as conn:
        return conn.execute(  # type: ignore[return-value]
            "SELECT event_id, symbol, extract(epoch FROM ts) * 1000, extract(epoch FROM inserted_at - ts) * 1000"
            " FROM md_ticks WHERE event_id = ANY(%s)",
            (acked,),
        ).fetchall()


def db_count(settings: Settings, acked: list[str]) -> int:
    with psycopg.connect(settings.pg_dsn) as conn:
        sql = "SELECT count(DISTINCT event_id) FROM md_ticks WHERE event_id = ANY(%s)"
        row = conn.execute(sql, (acked,)).fetchone()
    assert row is not None
    return int(row[0])


async def ticks_in_views(api_url: str) -> int:
    """Ticks counted in the workers' candles over all symbols: the views' side of catching up."""
    async with httpx.AsyncClient(base_url=api_url) as client:
        symbols = [s["symbol"] for s in (await client.get("/symbols")).json()["symbols"]]
        total = 0
        for symbol in symbols:
            candles = (await client.get(f"/symbols/{symbol}/candles", params={"interval": "15m"})).json()["candles"]
            total += sum(c["count"] for c in candles)
    return total


async def catch_up(
    api_url: str, persisted: Callable[[], int], acked: int, views_before: int, since: float
) -> float | None:
    """Seconds from `since` (the load's end, monotonic) until `persisted()` (run in a thread) reaches `acked`
    and the views count as many new ticks as are persisted; None after DRAIN_TIMEOUT_S."""
    while time.monotonic() - since < DRAIN_TIMEOUT_S:
        rows = await asyncio.to_thread(persisted)
        if rows >= acked and await ticks_in_views(api_url) - views_before >= rows:
            return time.monotonic() - since
        await asyncio.sleep(0.1)
    return None


async def sample_backlog(settings: Settings, load: Awaitable[Any]) -> tuple[Any, list[tuple[int, int]]]:
    """Await `load` while sampling the backlog every BACKLOG_SAMPLE_S; its result and the samples."""
    client = aioredis.Redis.from_url(settings.redis_url)
    task = asyncio.ensure_future(load)
    samples: list[tuple[int, int]] = []
    try:
        while not task.done():
            samples.append(await backlog(client, settings))
            await asyncio.wait([task], timeout=BACKLOG_SAMPLE_S)
        return task.result(), samples
    finally:
        task.cancel()
        await client.aclose()


def backlog_figures(samples: list[tuple[int, int]]) -> dict[str, list[int] | None]:
    """(RQ jobs queued, flush batches waiting): the worst in the first and last third of the run."""
    third = max(1, len(samples) // 3)
    return {
        "backlog_first_third": list(map(max, zip(*samples[:third], strict=True))) if samples else None,
        "backlog_last_third": list(map(max, zip(*samples[-third:], strict=True))) if samples else None,
    }


def latency_figures(listener: ViewListener, rows: list[tuple[str, str, float, float]]) -> dict[str, Any]:
    """tick->SSE and tick->Postgres percentiles of persisted ticks (`db_rows`)."""
    return {
        "tick_to_sse_ms": percentiles(listener.tick_to_view_ms([(r[1], float(r[2])) for r in rows])),
        "tick_to_postgres_ms": percentiles([float(r[3]) for r in rows]),
    }


async def run_step(
    stack: Stack,
    listener: ViewListener,
    *,
    tps: float,
    batch: int,
    duration: float,
    seed: int,
    tag: str,
    feeders: int = 1,
) -> dict[str, Any]:
    """One run at `tps` on a running stack (`feeders` processes sharing the rate); figures for its ticks only."""
    workdir = stack.log_dir
    views_before, ticks_before = listener.count(), await ticks_in_views(stack.api_url)
    files = [(workdir / f"summary-{tag}-{i}.json", workdir / f"acked-{tag}-{i}.txt") for i in range(feeders)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.feeder",
            "--duration",
            str(duration),
            "--tps",
            str(tps / feeders),
            "--batch",
            str(batch),
            "--seed",
            str(seed * 100 + i),
            "--quiet",
            "--trade-tps",
            "0",
            "--summary-json",
            str(summary_file),
            "--acked-ids",
            str(acked_file),
            env=stack.env,
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        for i, (summary_file, acked_file) in enumerate(files)
    ]
    _, samples = await sample_backlog(stack.settings, asyncio.gather(*(p.wait() for p in procs)))
    fed = time.monotonic()
    summaries = [json.loads(summary_file.read_text()) for summary_file, _ in files]
    summary = {k: sum(x[k] for x in summaries) for k in ("sent", "acknowledged", "errors", "behind", "missed")}
    acked = [event_id for _, acked_file in files for event_id in acked_file.read_text().split()]
    caught_up = await catch_up(stack.api_url, lambda: db_count(stack.settings, acked), len(acked), ticks_before, fed)
    await asyncio.sleep(1.0)  # the last views reach the SSE listener
    rows = await asyncio.to_thread(db_rows, stack.settings, acked)
    distinct = len({r[0] for r in rows})
    return {
        "tps_target": tps,
        "batch": batch,
        "duration_s": duration,
        "feeders": feeders,
        "sent": summary["sent"],
        "acknowledged": summary["acknowledged"],
        "feeder_errors": summary["errors"],
        "feeder_behind": summary["behind"],
        "feeder_missed": summary["missed"],
        "achieved_tps": round(summary["acknowledged"] / duration),
        "persisted": len(rows),
        "duplicates_in_postgres": len(rows) - distinct,
        "acknowledged_missing_in_postgres": len(set(acked)) - distinct,
        "catch_up_s": None if caught_up is None else round(caught_up, 2),
        **backlog_figures(samples),
        "views_received": listener.count() - views_before,
        # with several feeders, the worst feeder's figure: their histograms are not merged
        "ack_latency_ms": {k: max(x[f"ack_latency_{k}_ms"] for x in summaries) for k in ("p50", "p95", "p99", "max")},
        **latency_figures(listener, rows),
    }


def delivered_once(step: dict[str, Any]) -> bool:
    return step["duplicates_in_postgres"] == 0 and step["acknowledged_missing_in_postgres"] == 0


async def run(args: argparse.Namespace, settings: Settings, workdir: Path) -> dict[str, Any]:
    stack = Stack(settings, workdir)
    try:
        stack.up(args.workers)
        async with ViewListener(stack.gateway_url) as listener:
            step = await run_step(
                stack,
                listener,
                tps=args.tps,
                batch=args.batch,
                duration=args.duration,
                seed=1,
                tag="run",
                feeders=args.feeders,
            )
            step["views_per_symbol"] = dict(sorted(Counter({s: len(v) for s, v in listener.arrivals.items()}).items()))
        return {"workers": args.workers, **step}
    finally:
        stack.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tick_path", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--tps", type=float, default=50.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--feeders", type=int, default=1, help="feeder processes sharing the rate")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mdstack-bench-") as tmp:
        workdir = Path(tmp)
        with bench_settings(workdir) as settings:
            result = asyncio.run(run(args, settings, workdir))
    report(result, args.json)
    return 0 if delivered_once(result) else 1


if __name__ == "__main__":
    raise SystemExit(main())
