"""QuietServer (common/metrics_port.py): the API's and gateway's uvicorn main loop ticks every TICK_S, not every
100 ms, and a stop signal still stops it at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import pytest

from harness.http import http
from services.common.embedded import free_port

# The server in a process of its own (uvicorn takes the signals only in a main thread), its tick made 30 s:
# a stop that came at a tick would take that long. It prints how often its main loop ticked in its first 2 s.
SCRIPT = """
import asyncio, sys, threading, time
from services.common import metrics_port
metrics_port.TICK_S = 30.0
ticks = []
original = metrics_port.QuietServer.on_tick
async def on_tick(self, counter):
    ticks.append(time.monotonic())
    return await original(self, counter)
metrics_port.QuietServer.on_tick = on_tick
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
def report():
    time.sleep(2.0)
    print(f"ticks {len(ticks)}", flush=True)
threading.Thread(target=report, daemon=True).start()
metrics_port.serve(app, "127.0.0.1", int(sys.argv[1]), 0)
"""


@pytest.mark.e2e
def test_the_main_loop_does_not_wake_ten_times_a_second_and_a_stop_signal_stops_it_at_once() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert http().get(f"http://127.0.0.1:{port}/", timeout=1).text == "ok"
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ticks 1"  # uvicorn's own loop: 20 in 2 s

        proc.send_signal(signal.SIGTERM)
        # Well before the 30 s tick; uvicorn raises the signal again once it has shut down.
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
