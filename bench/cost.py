"""CPU per tick: what each service costs per persisted tick at fixed open-loop rates, and idle.

    python -m bench.cost [--rates 100:1,1000:10,15000:100] [--duration 20] [--idle 10] [--json out.json]

The stack runs as in production, every service its own process (API, `--workers` workers, the flusher, the
gateway with one SSE listener); each `rate:batch` is driven open loop by the project's feeder for single
ticks and by wrk (bench/wrk/batch.lua) for batches (`--generator`). CPU time is
utime + stime from /proc (psutil) of each service and its children (RQ's scheduler is a worker's child), of
the Redis server, and of the Postgres server with every backend (a backend that has exited is counted in its
postmaster's children times). The feeders and the SSE listener are the load and are left out. A sampler
reads every service's CPU each SAMPLE_S; a step's window opens at the last sample before its first tick
was accepted (the feeders' own start-up is not the stack's cost) and closes when its last tick is in
Postgres and in a view. Its CPU is divided by the ticks it persisted; `cores` is that CPU over the
window's wall time. The idle row is the stack with nobody sending. Each single-tick rate also gets its
floor (`bench/floor.py`): what a raw ASGI app and a bare FastAPI app under the same uvicorn cost per request
when the same feeder posts to them at the same rate, after the stack has stopped.

Redis and Postgres are the ones the stack runs on: on a shared server the figures include whatever else
runs there, so run it on a quiet machine (the CI form only checks that the table is produced).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

import psutil
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from bench import floor
from bench.latency import rates_parser, run_ladder, step
from bench.tick_path import ViewListener
from harness.stack import Stack
from services.common.keys import Keys
from services.common.settings import Settings

SAMPLE_S = 0.25
FLUSH_INTERVAL_MS = Settings.model_fields["FLUSH_INTERVAL_MS"].default


def listener_pid(port: int) -> int | None:
    """The process listening on a local TCP port (the Redis or Postgres server), if this user can see it."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process, its live descendants, and the children it has reaped."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:  # ended between the listing and now: its time went to its parent
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


class CpuMeter:
    """CPU seconds per service of a running stack, plus the Redis and Postgres servers under it."""

    def __init__(self, stack: Stack, settings: Settings) -> None:
        self.pids: dict[str, int] = {name: proc.pid for name, proc in stack.processes.items()}
        for name, url in (("redis", settings.redis_url), ("postgres", settings.pg_url)):
            port = make_url(url).port or (6379 if name == "redis" else 5432)
            if (pid := listener_pid(port)) is not None:
                self.pids[name] = pid

    def read(self) -> dict[str, float]:
        return {name: _tree_cpu_s(pid) for name, pid in self.pids.items()}


def group(name: str) -> str:
    """Services as the table shows them: the workers together."""
    return "workers" if name.startswith("worker") else name


def cost(before: dict[str, float], after: dict[str, float], wall_s: float, ticks: int) -> dict[str, Any]:
    by_service: dict[str, float] = {}
    for name in after:
        by_service[group(name)] = by_service.get(group(name), 0.0) + after[name] - before.get(name, 0.0)
    total = sum(by_service.values())
    per_tick = {name: round(cpu * 1e6 / ticks, 1) if ticks else None for name, cpu in by_service.items()}
    return {
        "wall_s": round(wall_s, 2),
        "ticks": ticks,
        "cpu_s": {name: round(cpu, 3) for name, cpu in by_service.items()},
        "cpu_us_per_tick": per_tick,
        "total_cpu_us_per_tick": round(total * 1e6 / ticks, 1) if ticks else None,
        "cores": round(total / wall_s, 3) if wall_s else None,
    }


class Sampler:
    """(monotonic time, accepted ticks so far, CPU per service) every SAMPLE_S while a step runs."""

    def __init__(self, meter: CpuMeter, settings: Settings) -> None:
        self.meter = meter
        self.redis = aioredis.Redis.from_url(settings.redis_url)
        self.accepted_key = Keys(settings.KEY_PREFIX).accepted
        self.samples: list[tuple[float, int, dict[str, float]]] = []

    async def sample(self) -> None:
        accepted = int(await self.redis.hget(self.accepted_key, "tick") or 0)
        self.samples.append((time.monotonic(), accepted, await asyncio.to_thread(self.meter.read)))

    async def run(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(SAMPLE_S)

    def window(self) -> tuple[float, dict[str, float], float, dict[str, float]]:
        """(start, CPU at start, end, CPU at end): from the last sample before the first accepted tick."""
        first_accepted = self.samples[0][1]
        start = next((i for i, s in enumerate(self.samples) if s[1] > first_accepted), len(self.samples)) - 1
        (t0, _, cpu0), (t1, _, cpu1) = self.samples[max(start, 0)], self.samples[-1]
        return t0, cpu0, t1, cpu1


async def measured_step(meter: CpuMeter, settings: Settings, step: Any) -> dict[str, Any]:
    """Run `step` (a run_step coroutine) with the sampler on; the step's figures plus its `cost`."""
    sampler = Sampler(meter, settings)
    await sampler.sample()
    task = asyncio.create_task(sampler.run())
    try:
        result = await step
    finally:
        task.cancel()
        await sampler.sample()
        await sampler.redis.aclose()
    t0, cpu0, t1, cpu1 = sampler.window()
    result["cost"] = cost(cpu0, cpu1, t1 - t0, result["persisted"])
    return result


async def run(args: argparse.Namespace, settings: Settings, workdir: Path) -> dict[str, Any]:
    stack = Stack(settings, workdir)
    # The deployed flush window, not the 100 ms the harness gives tests: it sets the flusher's and Postgres's
    # transactions per second.
    stack.env["FLUSH_INTERVAL_MS"] = os.environ.get("FLUSH_INTERVAL_MS", str(FLUSH_INTERVAL_MS))
    steps = []
    try:
        stack.up(args.workers)
        meter = CpuMeter(stack, settings)
        async with ViewListener(stack.gateway_url) as listener:
            before, started = meter.read(), time.monotonic()
            await asyncio.sleep(args.idle)
            idle = cost(before, meter.read(), time.monotonic() - started, 0)
            for i, (rate, batch) in enumerate(args.rates):
                coroutine = step(stack, listener, rate, batch, args.duration, 300 + i, f"cost-{i}", args.generator)
                steps.append(await measured_step(meter, settings, coroutine))
    finally:
        stack.stop_all()
    for result in steps:  # the stack stopped: the machine is as quiet for the floor as for the stack
        if result["batch"] == 1:
            result["floor"] = await asyncio.to_thread(floor.measure, workdir, result["tps_target"], args.duration)
    return {"workers": args.workers, "measured": sorted(meter.pids), "idle": idle, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    parser = rates_parser("python -m bench.cost", __doc__, "100:1,1000:10,15000:100", 20.0)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle measurement")
    return run_ladder(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
