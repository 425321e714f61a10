"""Real uvicorn servers in background threads, on free loopback ports."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from harness.http import client_tls, http
from harness.stack import wait_ready
from services.common.embedded import free_port
from services.common.metrics_port import QuietServer

START_TIMEOUT_S = 15.0
__all__ = ["TestServer", "client_tls", "http", "serve", "wait_ready"]


class TestServer(QuietServer):
    """A uvicorn server that stops as soon as `stop()` is called (a test run starts and stops a server a few
    hundred times)."""

    def stop(self) -> None:
        """Ask the server to stop, from any thread."""
        self.should_exit = True
        self.wake()


@contextmanager
def serve(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """Run `app` until the block ends; yields its base URL once it answers."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    server = TestServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on {url} did not start")
        time.sleep(0.01)
    try:
        yield url
    finally:
        server.stop()
        thread.join(10)
