"""`mdstack kafka-consumer` without a broker: refused unless --idle-without-broker, which keeps the process alive,
never ready, until SIGTERM (the Render Blueprint declares the service whether or not a broker exists)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from harness.http import http
from services.common.embedded import free_port
from services.kafka_consumer.__main__ import NOT_CONFIGURED
from tests.kafka_consumer.helpers import wait_for

pytestmark = pytest.mark.e2e


def consumer(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    return subprocess.Popen(
        [sys.executable, "-m", "services.kafka_consumer", *args],
        env=env | {"LOG_FORMAT": "json"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def answers(url: str) -> bool:
    try:
        http().get(url, timeout=1)
    except httpx.HTTPError:
        return False
    return True


def test_without_a_broker_the_consumer_refuses_to_start() -> None:
    proc = consumer("--metrics-port", "0")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "KAFKA_BOOTSTRAP_SERVERS is not set" in out


def test_idle_without_broker_is_alive_not_ready_and_stops_on_sigterm() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = consumer("--idle-without-broker", "--metrics-port", str(port))
    try:
        wait_for(lambda: proc.poll() is not None or answers(f"{base}/health/liveness"), 30, "the health server")
        assert proc.poll() is None, "exited instead of idling"
        assert http().get(f"{base}/health/liveness", timeout=2).json() == {"status": "alive"}
        ready = http().get(f"{base}/health/readiness", timeout=2)
        assert ready.status_code == 503
        assert ready.json()["problems"] == [NOT_CONFIGURED]
        assert http().get(f"{base}/metrics", timeout=2).status_code == 200
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert time.monotonic() - started < 5, "SIGTERM ends the idle wait at once"
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, f"one line, not a loop of retries: {lines}"
    assert "kafka_consumer.idle" in lines[0]
    assert "KAFKA_BOOTSTRAP_SERVERS is not set" in lines[0]
