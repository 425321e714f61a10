"""wrk as the batch load generator: unique ticks in POSTs of `batch` at a paced rate, for little CPU.

The Lua script (bench/wrk/batch.lua) does the work: one connection per wrk thread, each thread on its own
schedule, ack latency counted from the scheduled send time, every tick a new event_id
`<run_id>-<thread>-<request>-<index>` with `ts` = its scheduled time. This module builds the command line,
runs wrk, and reads back the script's RESULT line and wrk's own CPU time (its rusage from wait4: every
thread's user and system time, exactly).
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from harness.percentiles import percentiles
from services.feeder.walk import PROFILES

SCRIPT = Path(__file__).with_name("wrk") / "batch.lua"
GRACE_S = 3.0  # wrk runs this long (or up to a second more: -d takes whole seconds) past the last scheduled
# send, so that the last requests get their answers
RESULT = "RESULT "


def symbols_arg() -> str:
    """The feeder's demo symbols as the script takes them: SYMBOL:price:decimals:volume scale:volume decimals."""
    return ",".join(
        f"{name}:{p.start_price}:{p.price_decimals}:{p.volume_scale}:{p.volume_decimals}"
        for name, p in PROFILES.items()
    )


def command(
    url: str, username: str, password: str, *, tps: float, batch: int, seconds: float, connections: int, run_id: str
) -> list[str]:
    auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    return [
        "wrk", f"-t{connections}", f"-c{connections}", f"-d{math.ceil(seconds + GRACE_S)}s", "--timeout", "10s",
        "-H", f"Authorization: {auth}", "-H", "Content-Type: application/json",
        "-s", str(SCRIPT), f"{url}/ingest/ticks",
        "--", run_id, str(batch), f"{tps / batch:g}", f"{seconds:g}", str(connections), symbols_arg(),
    ]  # fmt: skip


def parse(out: str, run_id: str, batch: int) -> tuple[dict[str, Any], list[str]]:
    """The script's RESULT line: its figures (ack latencies as percentiles) and every acknowledged event_id."""
    line = next((line for line in out.splitlines() if line.startswith(RESULT)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no RESULT line:\n{out[-3000:]}")
    result = json.loads(line.removeprefix(RESULT))
    result["ack_latency_ms"] = percentiles(result["ack_latency_ms"])
    result["unanswered"] = result["sent_requests"] - result["answered"]
    acked = [
        f"{run_id}-{thread}-{request}-{i}"
        for thread, requests in result.pop("acked_requests").items()
        for request in requests
        for i in range(1, batch + 1)
    ]
    return result, acked


def run_batches(
    url: str,
    username: str,
    password: str,
    *,
    tps: float,
    batch: int,
    seconds: float,
    connections: int,
    run_id: str,
    log: Path,
) -> tuple[dict[str, Any], list[str]]:
    """wrk at `tps` ticks/s for `seconds` (plus GRACE_S), until it ends: its figures and the acknowledged
    event_ids (every tick of each request answered 2xx). `log` keeps wrk's output."""
    args = command(url, username, password, tps=tps, batch=batch, seconds=seconds, connections=connections,
                   run_id=run_id)  # fmt: skip
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        _, status, usage = os.wait4(proc.pid, 0)  # wait4, not wait: the rusage is the generator's CPU
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    text = log.read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}:\n{text[-3000:]}")
    result, acked = parse(text, run_id, batch)
    cpu = usage.ru_utime + usage.ru_stime
    result["generator"] = {
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 2),
        "cores_while_sending": round(cpu / seconds, 3),  # its CPU over the sending time: an upper bound
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: ru_maxrss in KiB
    }
    return result, acked
