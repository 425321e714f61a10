"""Fault tests: the real processes on real ports, a feeder running, then a crash or an outage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack import Stack
from services.common.embedded import EmbeddedPostgres, EmbeddedRedis
from services.common.settings import Settings
from tests.faults.harness import FaultRun, running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.path):
            item.add_marker(pytest.mark.fault)
            item.add_marker(pytest.mark.timeout(240))


@pytest.fixture
def stack(settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    """API, two workers, flusher and gateway (workers and flusher with /health/*) on the shared servers."""
    with running(settings, tmp_path) as s:
        yield s


@pytest.fixture
def run(stack: Stack, tmp_path: Path, request: pytest.FixtureRequest) -> FaultRun:
    return FaultRun(stack, tmp_path, request.node.name)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server of this test's own, to kill and restart; fsync on every write, so a kill keeps all
    acknowledged data (the AOF setting doc/storage-and-db.md recommends)."""
    server = EmbeddedRedis(tmp_path, appendonly=True, appendfsync="always")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own (pgserver), to stop and start."""
    server = EmbeddedPostgres(tmp_path)
    server.start()
    yield server
    server.stop()
