"""Private attributes of libraries the code relies on (issue 13, item 8).

Each is pinned below an upper bound in pyproject.toml; these tests fail when an upgrade inside that bound (or a
bound raised without looking) removes or renames what the code overrides or reads, before it breaks at run time.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import pytest
import rq.worker
import uvicorn.protocols.http.httptools_impl as httptools_impl
from packaging.requirements import Requirement
from sse_starlette import EventSourceResponse

from services.consumers.worker import Worker
from services.realtime_gateway.response import StreamResponse

ROOT = Path(__file__).resolve().parents[2]


def test_sse_starlette_sends_every_frame_through_send_with_timeout() -> None:
    """realtime_gateway/response.py overrides it to time each send (the watchdog)."""
    original = EventSourceResponse._send_with_timeout
    assert inspect.iscoroutinefunction(original)
    assert list(inspect.signature(original).parameters) == ["self", "send", "message"]
    assert StreamResponse._send_with_timeout is not original
    source = inspect.getsource(EventSourceResponse)
    assert source.count("self._send_with_timeout(") >= 2, "frames and pings no longer go through it"


def test_uvicorn_cycle_keeps_what_the_hub_writes_through() -> None:
    """realtime_gateway/direct.py reads these off uvicorn's connection and writes chunks as its send does."""
    init = inspect.getsource(httptools_impl.RequestResponseCycle.__init__)
    for attribute in ("transport", "chunked_encoding", "response_started", "response_complete"):
        assert re.search(rf"self\.{attribute}\b[^=\n]*= ", init), attribute
    send = inspect.getsource(httptools_impl.RequestResponseCycle.send)
    assert 'content = [b"%x\\r\\n" % len(body), body, b"\\r\\n"]' in send, "the chunk framing changed"


def test_rq_worker_keeps_its_shutdown_attributes(redis_url: str) -> None:
    """services/consumers/worker.py sets them, services/consumers/__main__.py reads one."""
    import redis

    assert callable(rq.worker.Worker._install_signal_handlers)
    worker = Worker([], connection=redis.Redis.from_url(redis_url))
    assert worker._shutdown_requested_date is None
    assert worker._stop_requested is False
    modules = {inspect.getmodule(c) for c in rq.worker.Worker.__mro__ if c.__module__.startswith("rq.")}
    source = "".join(inspect.getsource(m) for m in modules if m)
    assert "self._shutdown_requested_date = " in source, "RQ no longer records when a stop was asked for"
    assert "self._stop_requested" in source


@pytest.mark.parametrize("name", ["rq", "sse-starlette", "uvicorn"])
def test_libraries_used_through_private_apis_have_an_upper_bound(name: str) -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (requirement,) = [Requirement(d) for d in dependencies if Requirement(d).name == name]
    assert any(spec.operator in ("<", "<=", "==", "~=") for spec in requirement.specifier), f"{name} has no upper bound"
