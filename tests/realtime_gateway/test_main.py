"""`python -m services.realtime_gateway` as a real process on a real port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from harness.http import client_tls
from harness.sse import fields
from services.common.embedded import free_port
from services.common.settings import Settings
from tests.realtime_gateway.helpers import Publisher, open_stream

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]


async def test_gateway_process_serves_a_stream_and_stops_on_sigterm_with_a_client_connected(
    settings: Settings, publisher: Publisher, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "PG_URL": settings.pg_url,
        "KEY_PREFIX": settings.KEY_PREFIX,
        "PUBSUB_CHANNEL": settings.PUBSUB_CHANNEL,
        "STATE_DIR": str(tmp_path),
        # X-Forwarded-For from this test (127.0.0.1) must count for nothing: uvicorn's own proxy_headers
        # (FORWARDED_ALLOW_IPS, 127.0.0.1 by default) would believe it.
        "TRUSTED_PROXIES": "10.0.0.0/8",
        "SSE_MAX_PER_IP": "1",
    }
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.realtime_gateway", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with anyio.fail_after(30):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5.0, verify=client_tls()) as http:
                while True:
                    try:
                        if (await http.get("/health/readiness")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert process.poll() is None, log.read_text()
                    await anyio.sleep(0.1)
                async with open_stream(http, "?symbols=BTCUSDT", {"x-forwarded-for": "198.51.100.1"}) as reader:
                    spoofed = await http.get("/stream", headers={"x-forwarded-for": "198.51.100.2"})
                    assert spoofed.status_code == 429, spoofed.text
                    event_id = await publisher.one()
                    assert fields(await reader.event())["id"] == event_id
                    process.send_signal(signal.SIGTERM)
                    while process.poll() is None:
                        await anyio.sleep(0.05)
        # uvicorn re-raises the signal once it has shut down gracefully.
        assert process.returncode in (0, -signal.SIGTERM), log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines = log.read_text()
    assert '"event": "gateway.started"' in lines
    assert '"service": "gateway"' in lines
    assert '"level": "error"' not in lines, lines
