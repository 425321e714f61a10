"""The ceiling: the highest ingest rate the whole stack sustains, for batch POSTs and for single-tick POSTs.

    python -m bench.ceiling [--rates 5000,10000,20000,30000] [--batch 100] [--step 10] [--wrk 10]
                            [--generator wrk|feeder] [--json out.json]

One stack (API, workers, flusher, gateway; `--workers`) serves every step.

- Batch POSTs: an open-loop ladder. Each rate runs for `--step` seconds,
  driven by wrk with a Lua script that paces every connection and makes every
  tick unique (`bench.wrk_step`, `--batch-connections`), or by the project's
  feeder processes (`--generator feeder`, `bench.tick_path.run_step`), which
  cost far more CPU on the same two cores. A rate is *sustained* when the
  generator acknowledged its schedule with no errors, every acknowledged tick
  is in Postgres exactly once, the ack p99 (from the scheduled send) stayed
  under `MAX_ACK_P99_MS` (no queue building up in front of the API), and the
  stack caught up (Postgres and the views) within `CATCH_UP_S` of the load's
  end: the backlog behind the API stayed bounded at a couple of seconds of
  work. Each step reports the stack's CPU (`cost`, as bench.cost measures it)
  and the wrk process's own. The ladder stops at the first rate not sustained.
- Single-tick POSTs: one Python feeder cannot send more than a few hundred
  requests/s, so wrk (closed loop, `--connections`) drives `POST /ingest/tick`
  for `--wrk` seconds, every request a new event_id; afterwards every
  acknowledged tick is looked up in Postgres and the catch-up time measured.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.baselines import script_for, wrk
from bench.cost import CpuMeter, measured_step
from bench.tick_path import ViewListener, catch_up, delivered_once, run_step, ticks_in_views
from bench.wrk_step import CONNECTIONS, wrk_step
from harness.stack import Stack, bench_settings, report
from services.common.settings import Settings

CATCH_UP_S = 2.0  # a rate is sustained when the stack is this close behind when the load stops
MAX_ACK_P99_MS = 1000.0  # ... and acknowledgements kept up: requests were not piling up in front of the API
SCHEDULE_SLACK = 0.97  # the generator must acknowledge at least this share of the target rate


def errors(step: dict[str, Any]) -> int:
    return step["generator_errors"] if "generator_errors" in step else step["feeder_errors"]


def sustained(step: dict[str, Any]) -> bool:
    return (
        delivered_once(step)
        and errors(step) == 0
        and step["acknowledged"] >= SCHEDULE_SLACK * step["tps_target"] * step["duration_s"]
        and step["catch_up_s"] is not None
        and step["catch_up_s"] <= CATCH_UP_S
        and step["ack_latency_ms"]["p99"] <= MAX_ACK_P99_MS
    )


def load_step(
    stack: Stack, listener: ViewListener, meter: CpuMeter, args: argparse.Namespace, rate: float, i: int
) -> Any:
    """The step's coroutine with the chosen generator."""
    if args.generator == "wrk":
        return wrk_step(
            stack, listener, tps=rate, batch=args.batch, duration=args.step, tag=f"ceiling{i}",
            connections=args.batch_connections, meter=meter,
        )  # fmt: skip
    return run_step(
        stack, listener, tps=rate, batch=args.batch, duration=args.step, seed=100 + i, tag=f"ceiling-{i}",
        feeders=args.feeders,
    )  # fmt: skip


def progress(step: dict[str, Any]) -> str:
    cores = f"{step['cost']['total_cpu_us_per_tick']} µs/tick"
    if wrk := step.get("wrk"):
        cores += f", {step['stack_cores_while_sending']} cores; wrk {wrk['generator']['cores_while_sending']} cores"
    return (
        f"batch {step['batch']}: {step['tps_target']:,.0f} ticks/s -> acked {step['achieved_tps']:,}/s, "
        f"ack p99 {step['ack_latency_ms']['p99']} ms, catch-up {step['catch_up_s']} s, stack {cores}, "
        f"sustained={step['sustained']}"
    )


async def batch_ladder(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    steps = []
    meter = CpuMeter(stack, stack.settings)
    async with ViewListener(stack.gateway_url) as listener:
        for i, rate in enumerate(args.rates):
            step = await measured_step(meter, stack.settings, load_step(stack, listener, meter, args, rate, i))
            step["sustained"] = sustained(step)
            steps.append(step)
            print(progress(step), flush=True)  # noqa: T201 - progress for a human watching a long run
            if not step["sustained"]:
                break
    passed = [s["tps_target"] for s in steps if s["sustained"]]
    return {
        "batch": args.batch,
        "generator": args.generator,
        "ceiling_tps": max(passed) if passed else 0,
        "steps": steps,
    }


def persisted_with_prefix(settings: Settings, prefix: str) -> tuple[int, int]:
    with psycopg.connect(settings.pg_dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM md_ticks WHERE event_id LIKE %s", (prefix + "-%",)
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def single_tick(stack: Stack, seconds: float, connections: int) -> dict[str, Any]:
    """wrk at full speed on `POST /ingest/tick` with the whole stack behind it."""
    settings = stack.settings
    script = script_for(stack.log_dir, settings.INGEST_USERNAME, settings.INGEST_PASSWORD)
    run_id = "st" + uuid.uuid4().hex[:8]
    views_before = await ticks_in_views(stack.api_url)
    result = await asyncio.to_thread(wrk, f"{stack.api_url}/ingest/tick", seconds, connections, script, run_id)
    fed = time.monotonic()
    acked = result["requests"] - result["non_2xx"]
    # wrk counts only the answers it read; requests cut off at its end may be stored too: rows >= acked
    caught_up = await catch_up(
        stack.api_url, lambda: persisted_with_prefix(settings, run_id)[0], acked, views_before, fed
    )
    rows, distinct = await asyncio.to_thread(persisted_with_prefix, settings, run_id)
    return {
        "connections": connections,
        "duration_s": seconds,
        "acked_per_s": result["req_per_s"],
        "ack_latency_ms": {k: v for k, v in result.items() if k.endswith("_ms")},
        "non_2xx": result["non_2xx"],
        "acknowledged_about": acked,
        "persisted": rows,
        "duplicates_in_postgres": rows - distinct,
        "catch_up_s": None if caught_up is None else round(caught_up, 2),
        "sustained": result["non_2xx"] == 0
        and rows == distinct
        and distinct >= acked
        and caught_up is not None
        and caught_up <= CATCH_UP_S,
    }


async def run(args: argparse.Namespace, settings: Settings, workdir: Path) -> dict[str, Any]:
    stack = Stack(settings, workdir)
    try:
        stack.up(args.workers)
        batch = await batch_ladder(stack, args)
        single = await single_tick(stack, args.wrk, args.connections) if args.wrk > 0 else None
        return {"workers": args.workers, "batch_posts": batch, "single_tick_posts": single}
    finally:
        stack.stop_all()


def rate_list(text: str) -> list[float]:
    return [float(r) for r in text.split(",") if r.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=rate_list, default=rate_list("5000,10000,20000,30000,40000"))
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--step", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--generator", choices=("wrk", "feeder"), default="wrk", help="what drives the batch ladder")
    parser.add_argument("--batch-connections", type=int, default=CONNECTIONS, help="wrk connections (threads)")
    parser.add_argument("--feeders", type=int, default=2, help="feeder processes per rate (--generator feeder)")
    parser.add_argument("--wrk", type=float, default=10.0, help="seconds of single-tick wrk load (0: skip)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if (args.wrk > 0 or args.generator == "wrk") and not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="mdstack-bench-") as tmp, bench_settings(Path(tmp)) as settings:
        result = asyncio.run(run(args, settings, Path(tmp)))
    report(result, args.json)
    steps = result["batch_posts"]["steps"]
    return 0 if all(delivered_once(s) for s in steps) else 1


if __name__ == "__main__":
    raise SystemExit(main())
