"""Latency at fixed open-loop rates: ack, tick→SSE and tick→Postgres, p50/p95/p99/max.

    python -m bench.latency [--rates 100:1,1000:10,5000:100] [--duration 15] [--json out.json]

Each `rate:batch` runs for `--duration` seconds on one stack through
`bench.tick_path.run_step`; every latency is measured from the tick's
scheduled send time, so a stall anywhere, the load generator included, shows
up instead of hiding (no coordinated omission). A Python feeder process sends
a few hundred requests/s at most, so the rate is shared by as many feeders as
`REQUESTS_PER_FEEDER` asks for; on 2 cores shared with the stack, feeders
fall behind their own schedule well before the API does beyond ~300 requests/s,
hence the batches at the higher rates.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.tick_path import ViewListener, delivered_once, run_step
from bench.wrk_step import wrk_step
from harness.stack import Stack, bench_settings, report
from services.common.settings import Settings

REQUESTS_PER_FEEDER = 400.0


def rate_batches(text: str) -> list[tuple[float, int]]:
    out = []
    for part in text.split(","):
        rate, _, batch = part.strip().partition(":")
        out.append((float(rate), int(batch or 1)))
    return out


def step(
    stack: Stack,
    listener: ViewListener,
    rate: float,
    batch: int,
    duration: float,
    seed: int,
    tag: str,
    generator: str = "auto",
) -> Any:
    """One open-loop `rate` in POSTs of `batch`: the project's feeders (as many as it needs), or wrk.

    `auto`: wrk for batches (POST /ingest/ticks; a Python feeder costs ~45% of a core at 20k ticks/s, so at
    the top rates the box measured the load generator), the feeder for single ticks (the seed's webhook).
    """
    if generator == "wrk" or (generator == "auto" and batch > 1 and shutil.which("wrk")):
        return wrk_step(stack, listener, tps=rate, batch=batch, duration=duration, tag=tag)
    feeders = max(1, math.ceil(rate / batch / REQUESTS_PER_FEEDER))
    return run_step(stack, listener, tps=rate, batch=batch, duration=duration, seed=seed, tag=tag, feeders=feeders)


async def run(args: argparse.Namespace, settings: Settings, workdir: Path) -> dict[str, Any]:
    stack = Stack(settings, workdir)
    steps = []
    try:
        stack.up(args.workers)
        async with ViewListener(stack.gateway_url) as listener:
            for i, (rate, batch) in enumerate(args.rates):
                coroutine = step(stack, listener, rate, batch, args.duration, 200 + i, f"latency-{i}", args.generator)
                steps.append(await coroutine)
    finally:
        stack.stop_all()
    return {"workers": args.workers, "steps": steps}


def rates_parser(prog: str, doc: str, rates: str, duration: float) -> argparse.ArgumentParser:
    """--rates rate:batch,..., --duration per rate, --workers, --json: the arguments of every rate ladder."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    parser.add_argument("--rates", type=rate_batches, default=rate_batches(rates))
    parser.add_argument("--duration", type=float, default=duration, help="seconds per rate")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--generator",
        choices=("auto", "feeder", "wrk"),
        default="auto",
        help="what sends: auto = wrk for batches, the project's feeder for single ticks",
    )
    return parser


def run_ladder(run: Any, args: argparse.Namespace) -> int:
    """`run` on a bench stack, its result reported; exit status 1 when a step lost or duplicated a tick."""
    with tempfile.TemporaryDirectory(prefix="mdstack-bench-") as tmp, bench_settings(Path(tmp)) as settings:
        result = asyncio.run(run(args, settings, Path(tmp)))
    report(result, args.json)
    return 0 if all(delivered_once(s) for s in result["steps"]) else 1


def main(argv: list[str] | None = None) -> int:
    parser = rates_parser("python -m bench.latency", __doc__, "100:1,1000:10,5000:100", 15.0)
    return run_ladder(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
