"""The fan-out bench's nginx + nchan peer: its generated config serves SSE with a buffer for resume.

Needs nginx with the nchan module; where they are missing (and MDSTACK_REQUIRE_NCHAN is not 1) the test
checks that starting the peer says why instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from bench import nchan_peer
from harness.sse import is_comment, iter_frames

pytestmark = pytest.mark.e2e

JSON = {"Accept": "application/json"}
SSE = {"Accept": "text/event-stream"}


def can_run(tmp_path: Path) -> bool:
    """Whether nginx with nchan is here (it must be under MDSTACK_REQUIRE_NCHAN=1); where it is not, checks
    that starting the peer says why."""
    why = nchan_peer.unavailable()
    if why is None or os.environ.get("MDSTACK_REQUIRE_NCHAN") == "1":
        return True
    with pytest.raises(nchan_peer.PeerNotRun, match=r"not found \("), nchan_peer.nchan_server(tmp_path, 4):
        pass
    return False


def publish(server: nchan_peer.Nchan, body: bytes) -> str:
    """POST one message; nchan's id for it."""
    response = httpx.post(server.publish_url, content=body, headers=JSON, timeout=5)
    assert response.status_code in (201, 202), response.text  # 201: the message created the channel
    last_id: str = response.json()["last_message_id"]
    return last_id


def events(server: nchan_peer.Nchan, count: int, **headers: str) -> list[bytes]:
    """The first `count` event frames of a new subscription (a read timeout fails a stream that stalls)."""
    out: list[bytes] = []
    with httpx.stream("GET", server.subscribe_url, headers=SSE | headers, timeout=5) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for frame in iter_frames(response.iter_bytes()):
            if not is_comment(frame):
                out.append(frame)
            if len(out) == count:
                break
    return out


def test_nchan_peer_resumes_a_subscriber_from_its_last_event_id(tmp_path: Path) -> None:
    if not can_run(tmp_path):
        return
    with nchan_peer.nchan_server(tmp_path, 4) as server:
        ids = [publish(server, b'{"n":%d}' % n) for n in range(3)]
        resumed = events(server, 2, **{"Last-Event-ID": ids[0]})
        assert resumed == [f'id: {ids[n]}\ndata: {{"n":{n}}}\n\n'.encode() for n in (1, 2)]
        assert server.failure() is None
        assert len(server.worker_pids()) == 1  # worker_processes 1
    assert (tmp_path / "nginx.conf").is_file()
    assert server.failure() is not None  # stopped with the context


def test_nchan_peer_starts_a_new_subscriber_at_the_next_message_not_the_buffer(tmp_path: Path) -> None:
    if not can_run(tmp_path):
        return
    with nchan_peer.nchan_server(tmp_path, 4) as server:
        publish(server, b'{"n":0}')  # buffered: a client of the bench must not count it
        with httpx.stream("GET", server.subscribe_url, headers=SSE, timeout=5) as response:
            frames = iter_frames(response.iter_bytes())
            assert next(frames) == b": hi\n\n"  # what the bench's clients take as "subscribed"
            next_id = publish(server, b'{"n":1}')
            assert next(frames) == f'id: {next_id}\ndata: {{"n":1}}\n\n'.encode()
