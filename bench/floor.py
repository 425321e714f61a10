"""The floor under the API's CPU per request at a single-tick rate, measured as the API is.

    python -m bench.floor [--rate 100] [--duration 20] [--json out.json]

The project's feeder posts single ticks open loop at `--rate`, exactly as in `bench.cost`, to two servers
under the same uvicorn (uvloop, httptools, no access log): a raw ASGI app that answers every request with a
constant body, and the bare FastAPI app of `bench.baselines` (one POST endpoint with a pydantic body). Their
CPU time (utime + stime from /proc) over the feeder's run, divided by the requests they answered, is what a
request costs before any of mdstack's work: the HTTP server and the event loop waking for each request (at
100 requests/s nothing is amortised over several requests). `bench.cost` runs it beside each single-tick
rate, so the API's figure reads against it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil

from bench.baselines import BARE_APP, app_server
from harness.stack import report

# Answers what the feeder reads back (services/feeder/sender.py parse_answer), to every method and path.
RAW_APP = """
BODY = b'{"accepted":1,"duplicates":0}'
HEAD = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEAD})
    await send({"type": "http.response.body", "body": BODY})
"""
APPS = {"raw_asgi": RAW_APP, "bare_fastapi": BARE_APP}


def _cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def feed(url: str, rate: float, duration: float, summary: Path) -> dict[str, Any]:
    """The feeder at `rate` single ticks/s for `duration` s against `url`; its summary."""
    subprocess.run(
        [sys.executable, "-m", "services.feeder", "--target-url", url, "--tps", str(rate), "--batch", "1",
         "--duration", str(duration), "--seed", "1", "--quiet", "--trade-tps", "0", "--summary-json", str(summary)],
        check=True, stdout=subprocess.DEVNULL, timeout=duration + 60,
    )  # fmt: skip
    return json.loads(summary.read_text())  # type: ignore[no-any-return]


def measure(workdir: Path, rate: float, duration: float) -> dict[str, Any]:
    """CPU µs per answered request of each app at `rate` single-tick POSTs/s."""
    out: dict[str, Any] = {"rate": rate, "duration_s": duration}
    for name, source in APPS.items():
        with app_server(workdir, name, source) as (url, pid):
            before = _cpu_s(pid)
            summary = feed(url, rate, duration, workdir / f"floor-{name}.json")
            cpu_s = _cpu_s(pid) - before
        answered = summary["acknowledged"]
        out[name] = {
            "requests": summary["requests"],
            "answered": answered,
            "cpu_s": round(cpu_s, 3),
            "cpu_us_per_request": round(cpu_s / answered * 1e6, 1) if answered else None,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="single-tick POSTs per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per app")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mdstack-floor-") as tmp:
        result = measure(Path(tmp), args.rate, args.duration)
    report(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
