"""The dashboard's frame rate and memory over a long run at a high feed rate, in headless Chromium.

    python -m bench.dashboard_perf --minutes 3 --tps 2000 --batch 50 --trade-tps 50 [--json out.json]

Runs the stack (REDIS_URL / PG_URL or embedded servers), the feeder at the
given rate, and the built dashboard in Debian's Chromium (CHROMIUM_PATH or
`chromium` on PATH). Every 10 s it samples frames drawn (a requestAnimationFrame
counter installed before the page loads), the JS heap (Chrome DevTools
Performance metrics, after a forced GC) and the DOM size; it reports fps and
heap at the start and end. Loopback only; bounded by --minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.stack import Stack, bench_settings, report

SAMPLE_S = 10.0
FRAME_COUNTER = "window.__frames = 0; (function f() { window.__frames++; requestAnimationFrame(f); })();"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--js-flags=--expose-gc"]  # fmt: skip


def measure(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not executable:
        raise SystemExit("Chromium not found (set CHROMIUM_PATH)")
    samples: list[dict[str, Any]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.add_init_script(FRAME_COUNTER)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(stack.gateway_url + "/")
        page.wait_for_selector('[data-testid="sse-state"]:has-text("live")', timeout=20_000)
        end = time.monotonic() + args.minutes * 60
        frames = page.evaluate("window.__frames")
        while time.monotonic() < end:
            time.sleep(SAMPLE_S)
            now_frames = page.evaluate("window.__frames")
            page.evaluate("window.gc && window.gc()")
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            samples.append(
                {
                    "t_s": round(len(samples) * SAMPLE_S + SAMPLE_S),
                    "fps": round((now_frames - frames) / SAMPLE_S, 1),
                    "js_heap_mb": round(metrics["JSHeapUsedSize"] / 2**20, 2),
                    "dom_nodes": int(metrics["Nodes"]),
                }
            )
            frames = now_frames
            sys.stderr.write(json.dumps(samples[-1]) + "\n")
        if args.screenshot:
            page.screenshot(path=str(args.screenshot))
        browser.close()
    fps = [s["fps"] for s in samples]
    return {
        "minutes": args.minutes,
        "feeder": {"tps": args.tps, "batch": args.batch, "trade_tps": args.trade_tps},
        "fps_mean": round(sum(fps) / len(fps), 1),
        "fps_min": min(fps),
        "js_heap_mb_first": samples[0]["js_heap_mb"],
        "js_heap_mb_last": samples[-1]["js_heap_mb"],
        "js_heap_mb_max": max(s["js_heap_mb"] for s in samples),
        "dom_nodes_first": samples[0]["dom_nodes"],
        "dom_nodes_last": samples[-1]["dom_nodes"],
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard_perf", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--tps", type=float, default=2000.0)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--trade-tps", type=float, default=50.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--screenshot", type=Path, help="save the page at the end of the run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mdstack-bench-") as tmp:
        workdir = Path(tmp)
        with bench_settings(workdir) as settings:
            stack = Stack(settings, workdir)
            try:
                stack.up()
                stack.start(
                    "feeder", "--duration", str(args.minutes * 60 + 60), "--tps", str(args.tps),
                    "--batch", str(args.batch), "--trade-tps", str(args.trade_tps), "--quiet",
                )  # fmt: skip
                result = measure(stack, args)
            finally:
                stack.stop_all()
    report(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
