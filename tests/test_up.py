"""`mdstack up` with no REDIS_URL / PG_URL: embedded servers, every service, live data, clean Ctrl-C; and on given
servers from a fresh checkout."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.http import http
from harness.servers import wait_ready
from harness.sse import fields, is_comment, iter_frames
from services.common.embedded import free_port
from services.common.settings import Settings

pytestmark = pytest.mark.e2e


def poll(check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(check.__doc__ or "condition not met")
        time.sleep(0.2)


def free_block(size: int) -> int:
    """A first port with the next `size - 1` free as well: `up` puts flusher, worker, feeder on base, +1, +2."""
    for _ in range(100):
        base = free_port()
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + size):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return base
    raise RuntimeError(f"no block of {size} free ports")


@contextlib.contextmanager
def running_up(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`mdstack up <args>` until the block ends, then Ctrl-C (SIGINT) and a kill if it has not stopped in 60 s."""
    with log_path.open("wb") as log:
        up = subprocess.Popen([sys.executable, "-m", "services.cli", "up", *args], env=env, stdout=log,
                              stderr=subprocess.STDOUT)  # fmt: skip
        try:
            yield up
        finally:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(60)
            finally:
                if up.poll() is None:
                    up.kill()


def test_up_runs_the_stack_on_embedded_servers(tmp_path: Path) -> None:
    api_port, gateway_port, redis_port, metrics_base = free_port(), free_port(), free_port(), free_block(3)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PG_URL")}
    env.update(
        STATE_DIR=str(tmp_path / "state"),
        API_PORT=str(api_port),
        GATEWAY_PORT=str(gateway_port),
        TARGET_URL=f"http://127.0.0.1:{api_port}",
        SYMBOLS="UPAAA,UPBBB",
        TPS="40",
        FLUSH_INTERVAL_MS="200",
        UP_STATUS_S="1",
    )
    env.pop("LOG_FORMAT", None)
    api, gateway = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{gateway_port}"
    args = ["--workers", "1", "--redis-port", str(redis_port), "--metrics-base-port", str(metrics_base)]
    with running_up(args, env, tmp_path / "up.log"):
        wait_ready(api, timeout=90)
        wait_ready(gateway)

        def both_symbols() -> bool:
            """the feeder's symbols have views"""
            listed = http().get(f"{api}/symbols").json()["symbols"]
            return {s["symbol"] for s in listed} == {"UPAAA", "UPBBB"}

        def persisted() -> bool:
            """ticks reached the embedded Postgres"""
            return len(http().get(f"{api}/symbols/UPAAA/history", params={"limit": 3}).json()["ticks"]) == 3

        poll(both_symbols)
        poll(persisted)
        with httpx.stream("GET", f"{gateway}/stream", params={"types": "symbol.updated"}, timeout=10) as stream:
            frames = iter_frames(stream.iter_bytes())
            assert poll(lambda: next(fields(f) for f in frames if not is_comment(f)))["event"] == "symbol.updated"
        assert "mdstack_flush_rows_total" in http().get(f"http://127.0.0.1:{metrics_base}/metrics").text
        worker_metrics = http().get(f"http://127.0.0.1:{metrics_base + 1}/metrics").text
        assert "mdstack_worker_jobs_total" in worker_metrics
        assert http().get(f"http://127.0.0.1:{metrics_base + 1}/health/readiness").status_code == 200
        servers_file = tmp_path / "state" / "servers.json"
        assert servers_file.exists()

        def status_line() -> str | None:
            """a status line reported ticks flowing"""
            lines = (tmp_path / "up.log").read_text().splitlines()
            return next(
                (line for line in lines if "status" in line and " ticks/s " in line and "ingest 0.0" not in line), None
            )

        line = poll(status_line)
        assert "| backlog " in line
        assert " MiB projected | refused " in line
    output = (tmp_path / "up.log").read_text()
    assert "mdstack is starting" in output
    assert "DEMO CREDENTIALS IN USE" in output
    assert '"event": "api.started"' in output  # up's stdout is a file here: the services log JSON
    assert '"event": "flusher.flushed"' not in output  # per-flush lines are DEBUG
    # Everything stopped: the embedded servers too.
    with pytest.raises(httpx.ConnectError):
        http().get(f"{api}/health/liveness")
    assert not (tmp_path / "state" / "pg" / "postmaster.pid").exists()
    assert not (tmp_path / "state" / "servers.json").exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", redis_port)) != 0


def test_up_on_given_servers_starts_from_a_fresh_checkout(tmp_path: Path, settings: Settings) -> None:
    """No STATE_DIR yet and no embedded server to make it: up makes it for servers.json (it crashed there)."""
    api_port, gateway_port = free_port(), free_port()
    state = tmp_path / "never-made"
    env = dict(os.environ, STATE_DIR=str(state), API_PORT=str(api_port), GATEWAY_PORT=str(gateway_port))
    env.update(REDIS_URL=settings.redis_url, PG_URL=settings.PG_URL or "", KEY_PREFIX=settings.KEY_PREFIX)
    env.update(QUEUE_NAME=settings.QUEUE_NAME, PUBSUB_CHANNEL=settings.PUBSUB_CHANNEL)
    with running_up(["--workers", "1", "--no-feeder", "--metrics-base-port", "0"], env, tmp_path / "up.log"):
        wait_ready(f"http://127.0.0.1:{api_port}", timeout=60)
        assert (state / "servers.json").exists()
