"""Baselines measured in the same run, so results also read as ratios that hold on a noisy machine.

    python -m bench.baselines --duration 5 [--connections 50] [--json out.json]

- bare FastAPI: one POST endpoint with a pydantic body, uvicorn + uvloop +
  httptools, no access log, loaded by wrk (Debian's `wrk`);
- single-tick ingest: mdstack's `POST /ingest/tick` (Basic Auth, validation,
  dedup, group commit into Redis) under the same wrk settings, every request
  with a new event_id; reported as a ratio of the bare rate;
- raw COPY: rows/s of psycopg COPY of ticks into a temporary table.

Uses REDIS_URL / PG_URL or the embedded servers; loopback only; bounded by --duration.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from harness.stack import Stack, bench_settings, report, wait_ready
from services.common.embedded import free_port

BARE_APP = """
from fastapi import FastAPI
from pydantic import BaseModel

class Tick(BaseModel):
    symbol: str
    price: float
    volume: float
    source: str
    ts: int
    event_id: str

app = FastAPI()

@app.post("/ingest/tick")
async def ingest(tick: Tick) -> dict:
    return {"accepted": 1, "duplicates": 0}  # what the feeder reads back (bench/floor.py drives it so)

@app.get("/health/readiness")
async def ready() -> dict:
    return {"status": "ready"}
"""

# Every request a new event_id: "<run>-<thread>-<n>", so ingest does real work, not dedup hits.
WRK_SCRIPT = """
local thread_no = 0
function setup(thread) thread:set("no", thread_no); thread_no = thread_no + 1 end
function init(args) run = args[1] or "run"; n = 0 end
request = function()
  n = n + 1
  local body = string.format(
    '{"symbol":"BTCUSDT","price":%d.25,"volume":1.5,"source":"wrk","ts":%d,"event_id":"%s-%d-%d"}',
    100 + n % 50, os.time() * 1000, run, no, n)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = auth}, body)
end
"""
RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
TOTAL = re.compile(r"(\d+) requests in")
LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)", re.M)
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
COPY_ROWS = 200_000
COPY_SQL = "COPY copy_bench (event_id, symbol, price, volume, source, ts, received_at) FROM STDIN"


def wrk(url: str, seconds: float, connections: int, script: Path, run_id: str) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url, "--", run_id],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout  # fmt: skip
    match = RATE.search(out)
    if not match:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    latency = {f"p{p}_ms": round(float(v) * UNIT_MS[u], 3) for p, v, u in LATENCY.findall(out)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = TOTAL.search(out)
    requests, failed = int(total.group(1)) if total else 0, int(non2xx.group(1)) if non2xx else 0
    rate = float(match.group(1))
    return {
        # Answers that were not 2xx do not count: a refusal costs less than the work it refuses.
        "req_per_s": round(rate * (requests - failed) / requests) if requests else 0,
        "requests": requests,
        **latency,
        "non_2xx": failed,
    }


def script_for(workdir: Path, username: str, password: str) -> Path:
    import base64

    auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    path = workdir / "ingest.lua"
    path.write_text(f'auth = "{auth}"\n' + WRK_SCRIPT)
    return path


@contextmanager
def app_server(workdir: Path, name: str, source: str) -> Iterator[tuple[str, int]]:
    """uvicorn (uvloop, httptools, no access log) serving `source`, a module defining `app`, on a free loopback
    port: yields (url, pid)."""
    (workdir / f"{name}.py").write_text(source)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"{name}:app", "--port", str(port), "--no-access-log",
         "--loop", "uvloop", "--http", "httptools", "--log-level", "warning"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(10)


def bare_fastapi(workdir: Path, seconds: float, connections: int, script: Path) -> dict[str, Any]:
    with app_server(workdir, "bare_app", BARE_APP) as (url, _):
        return wrk(f"{url}/ingest/tick", seconds, connections, script, "bare")


# The API runs alone (no worker or flusher drains what it accepts): its bounds on queued work raised past what
# a run can send, so that every answer is a commit, not a quick 503 once INGEST_MAX_QUEUED_ITEMS is reached.
UNBOUNDED = dict.fromkeys(("INGEST_MAX_BACKLOG", "INGEST_MAX_QUEUED_ITEMS", "INGEST_MAX_QUEUED_JOBS"), "100000000")


def ingest_single(stack: Stack, seconds: float, connections: int, script: Path) -> dict[str, Any]:
    stack.start("api", **UNBOUNDED)
    try:
        wait_ready(stack.api_url)
        return wrk(f"{stack.api_url}/ingest/tick", seconds, connections, script, uuid.uuid4().hex[:8])
    finally:
        stack.stop("api")


def raw_copy(pg_url: str) -> dict[str, Any]:
    """COPY into a fresh table shaped like md_ticks (its unique index included): the flusher's floor."""
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    received = datetime.now(UTC)
    rows = [
        (f"copy-{i}", "BTCUSDT", 100.0 + i % 50, 1.5, "bench", received - timedelta(milliseconds=i), received)
        for i in range(COPY_ROWS)
    ]
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE copy_bench (LIKE md_ticks INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor().copy(COPY_SQL) as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE copy_bench")
        conn.commit()
    return {"rows": COPY_ROWS, "rows_per_s": round(COPY_ROWS / elapsed)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="mdstack-bench-") as tmp:
        workdir = Path(tmp)
        with bench_settings(workdir) as settings:
            stack = Stack(settings, workdir)
            script = script_for(workdir, settings.INGEST_USERNAME, settings.INGEST_PASSWORD)
            try:
                bare = bare_fastapi(workdir, args.duration, args.connections, script)
                ingest = ingest_single(stack, args.duration, args.connections, script)
                copy = raw_copy(settings.pg_url)
            finally:
                stack.stop_all()
    result = {
        "connections": args.connections,
        "duration_s": args.duration,
        "bare_fastapi_post": bare,
        "ingest_single_tick": ingest,
        "ingest_vs_bare": round(ingest["req_per_s"] / bare["req_per_s"], 3),
        "raw_copy": copy,
    }
    report(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
