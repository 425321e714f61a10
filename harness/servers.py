"""Real uvicorn servers in background threads, on free loopback ports."""

from __future__ import annotations

import functools
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from harness.stack import wait_ready
from services.common.embedded import free_port

START_TIMEOUT_S = 15.0
__all__ = ["client_tls", "serve", "wait_ready"]


@contextmanager
def serve(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """Run `app` until the block ends; yields its base URL once it answers."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
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
        server.should_exit = True
        thread.join(10)


@functools.cache
def client_tls() -> ssl.SSLContext:
    """One TLS context for test clients (`httpx.AsyncClient(verify=client_tls())`): each client otherwise loads the
    CA bundle again, 30-300 ms here, for loopback URLs that never use it."""
    return ssl.create_default_context()
