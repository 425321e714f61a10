"""A bounded end-to-end run of the tick path with real processes, and what it delivered.

    python -m bench.tick_path --duration 20 --tps 50 [--batch 1] [--workers 2] [--json out.json]

Starts the API, N workers, the flusher and the gateway (on REDIS_URL / PG_URL,
or on embedded servers when unset; a scratch database and key prefix either
way), listens on the gateway's SSE stream, runs the feeder, waits until
Postgres and the views have caught up, and reports:

- ticks sent, acknowledged, persisted, duplicated in Postgres (must be 0);
- `symbol.updated` events received over SSE, per symbol;
- ack latency p50/p95/p99/max (the feeder's, from scheduled send times);
- ingest-to-view latency (the views' `latency_ms`, as received) and
  tick-to-Postgres latency (`inserted_at - received_at`), p50/p95/p99/max.

All traffic stays on loopback; the run is bounded by --duration plus a drain timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

from bench.stack import Stack, bench_settings, report
from services.common.settings import Settings

DRAIN_TIMEOUT_S = 60.0


def percentiles(values: list[float]) -> dict[str, float | None]:
    if len(values) < 2:
        only = values[0] if values else None
        return {"p50": only, "p95": only, "p99": only, "max": only}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 2),
        "p95": round(cuts[94], 2),
        "p99": round(cuts[98], 2),
        "max": round(max(values), 2),
    }


async def listen(url: str, received: list[dict[str, Any]]) -> None:
    async with (
        httpx.AsyncClient(timeout=None) as client,
        client.stream("GET", f"{url}/stream", params={"types": "symbol.updated"}) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                received.append(orjson.loads(line[6:]))


def db_figures(settings: Settings) -> tuple[int, int, list[float]]:
    with psycopg.connect(settings.pg_dsn) as conn:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM md_ticks").fetchone()  # type: ignore[misc]
        lags = [
            r[0]
            for r in conn.execute(
                "SELECT extract(epoch FROM inserted_at - received_at) * 1000 FROM md_ticks"
            ).fetchall()
        ]
    return rows, distinct, [float(x) for x in lags]


async def run(args: argparse.Namespace, settings: Settings, workdir: Path) -> dict[str, Any]:
    stack = Stack(settings, workdir)
    try:
        stack.up(args.workers)
        received: list[dict[str, Any]] = []
        listener = asyncio.create_task(listen(stack.gateway_url, received))
        await asyncio.sleep(0.5)
        summary_file, acked_file = workdir / "summary.json", workdir / "acked.txt"
        feeder = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.feeder", "--duration", str(args.duration), "--tps", str(args.tps),
            "--batch", str(args.batch), "--seed", "1", "--quiet",
            "--summary-json", str(summary_file), "--acked-ids", str(acked_file),
            env=stack.env, stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await feeder.wait()
        summary = json.loads(summary_file.read_text())
        acked = set(acked_file.read_text().split())
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            # Done when every acknowledged tick is in Postgres and in the workers' candles.
            if db_figures(settings)[1] >= len(acked) and await ticks_in_views(stack.api_url) >= len(acked):
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(1.0)  # the last views reach the SSE listener
        listener.cancel()
        rows, distinct, lags = db_figures(settings)
        return {
            "duration_s": args.duration,
            "tps_target": args.tps,
            "batch": args.batch,
            "workers": args.workers,
            "sent": summary["sent"],
            "acknowledged": summary["acknowledged"],
            "feeder_errors": summary["errors"],
            "persisted": rows,
            "persisted_distinct": distinct,
            "duplicates_in_postgres": rows - distinct,
            "acknowledged_missing_in_postgres": len(acked) - distinct if distinct <= len(acked) else 0,
            "views_received": len(received),
            "views_per_symbol": dict(sorted(Counter(e["symbol"] for e in received).items())),
            "ack_latency_ms": {
                "p50": summary["ack_latency_p50_ms"],
                "p95": summary["ack_latency_p95_ms"],
                "p99": summary["ack_latency_p99_ms"],
                "max": summary["ack_latency_max_ms"],
            },
            "ingest_to_view_ms": percentiles([e["data"]["view"]["latency_ms"] for e in received]),
            "tick_to_postgres_ms": percentiles(lags),
            "achieved_tps": summary["achieved_tps"],
        }
    finally:
        stack.stop_all()


async def ticks_in_views(api_url: str) -> int:
    async with httpx.AsyncClient(base_url=api_url) as client:
        symbols = [s["symbol"] for s in (await client.get("/symbols")).json()["symbols"]]
        total = 0
        for symbol in symbols:
            candles = (await client.get(f"/symbols/{symbol}/candles", params={"interval": "15m"})).json()["candles"]
            total += sum(c["count"] for c in candles)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tick_path", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--tps", type=float, default=50.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mdstack-bench-") as tmp:
        workdir = Path(tmp)
        with bench_settings(workdir) as settings:
            result = asyncio.run(run(args, settings, workdir))
    report(result, args.json)
    ok = result["duplicates_in_postgres"] == 0 and result["acknowledged_missing_in_postgres"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
