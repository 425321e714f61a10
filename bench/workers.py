"""Worker throughput: ticks/s and jobs/s one worker process gets through a queue that is already full.

    python -m bench.workers [--ticks 100000] [--job-sizes 1,100,1000] [--json out.json]

For each job size: the API alone takes `--ticks` ticks in sequential POSTs of
that many ticks (one group commit, so one RQ job, per POST); then one worker
(`--burst --no-rttm`) runs the queue dry: calc-a, calc-b and the view POSTs
back to the API, all of it. The rate is taken between the first job's start
and the last job's end as RQ recorded them, so process start-up is not in it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from harness.stack import Stack, bench_settings, report, wait_ready
from services.common.jobs import BatchJob, job_queue
from services.common.settings import Settings

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XAUUSD", "EURUSD")
MAX_TICKS_PER_SIZE_1 = 5_000  # one-tick jobs: enough to time RQ's per-job cost without a long fill


def fill(stack: Stack, ticks: int, job_size: int, run: str) -> int:
    """`ticks` ticks in POSTs of `job_size`; returns the number of POSTs (= RQ jobs)."""
    settings = stack.settings
    now_ms = int(time.time() * 1000)
    posts = ticks // job_size
    with httpx.Client(
        base_url=stack.api_url, auth=(settings.INGEST_USERNAME, settings.INGEST_PASSWORD), timeout=30
    ) as client:
        for p in range(posts):
            batch = [
                {
                    "symbol": SYMBOLS[(p * job_size + i) % len(SYMBOLS)],
                    "price": 100.0 + (i % 50) / 10,
                    "volume": 1.0,
                    "source": "bench",
                    "ts": now_ms - ticks + p * job_size + i,
                    "event_id": f"{run}-{p}-{i}",
                }
                for i in range(job_size)
            ]
            client.post("/ingest/ticks", json=batch).raise_for_status()
    return posts


def drain(stack: Stack, settings: Settings, tag: str) -> dict[str, Any]:
    client = redis.Redis.from_url(settings.redis_url)
    queue = job_queue(settings, client)
    job_ids = queue.get_job_ids()
    worker = stack.start(f"worker-{tag}", "--burst", "--no-rttm", "--metrics-port", "0", service="worker")
    worker.wait(600)
    jobs = [job for job in BatchJob.fetch_many(job_ids, connection=client) if job is not None]
    client.close()
    started = min(job.started_at for job in jobs if job.started_at)
    ended = max(job.ended_at for job in jobs if job.ended_at)
    return {
        "jobs": len(job_ids),
        "finished": sum(job.get_status() == "finished" for job in jobs),
        "seconds": round((ended - started).total_seconds(), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__.split("\n")[0])
    parser.add_argument("--ticks", type=int, default=100_000, help="ticks per job size")
    parser.add_argument("--job-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 100, 1000])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="mdstack-bench-") as tmp, bench_settings(Path(tmp)) as settings:
        stack = Stack(settings, Path(tmp))
        stack.env["JOB_RESULT_TTL_S"] = "3600"  # drain() times the jobs by RQ's own stamps, kept with their results
        try:
            stack.start("api")
            wait_ready(stack.api_url)
            for size in args.job_sizes:
                ticks = min(args.ticks, MAX_TICKS_PER_SIZE_1) if size == 1 else args.ticks
                posts = fill(stack, ticks, size, f"w{size}")
                figures = drain(stack, settings, str(size))
                seconds = figures["seconds"] or float("nan")
                results.append(
                    {
                        "ticks_per_job": size,
                        "ticks": posts * size,
                        **figures,
                        "jobs_per_s": round(figures["jobs"] / seconds),
                        "ticks_per_s": round(posts * size / seconds),
                    }
                )
        finally:
            stack.stop_all()
    result = {"worker_processes": 1, "runs": results}
    report(result, args.json)
    return 0 if all(r["finished"] == r["jobs"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
