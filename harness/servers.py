"""Real uvicorn servers in background threads, on free loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from harness.http import client_tls, http
from harness.stack import wait_ready
from services.common.embedded import free_port

START_TIMEOUT_S = 15.0
__all__ = ["TestServer", "client_tls", "http", "serve", "wait_ready"]


class TestServer(uvicorn.Server):
    """A uvicorn server that stops as soon as `stop()` is called: uvicorn's own loop looks at `should_exit` every
    100 ms, and a test run starts and stops a server a few hundred times."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wakeup: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._wakeup, self._loop = asyncio.Event(), asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter += 10  # on_tick refreshes the Date header when counter % 10 == 0: once a second, as uvicorn does
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), 1.0)

    def stop(self) -> None:
        """Ask the server to stop, from any thread."""
        self.should_exit = True
        if self._loop is not None and self._wakeup is not None:
            with contextlib.suppress(RuntimeError):  # its loop already closed: it has stopped
                self._loop.call_soon_threadsafe(self._wakeup.set)


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
