"""Test lanes: a test that starts a process must be marked `e2e`, `fault` or `browser`.

`make test-fast` deselects those three markers, so an unmarked test that
starts a process would slow the fast lane down, or fail where no process may
run. The guard is a Python audit hook (`sys.addaudithook`): every way of
starting a process (subprocess, asyncio subprocesses, os.fork for
multiprocessing, os.system, os.exec*, os.posix_spawn) raises an audit event,
so the guard sees a process whichever helper started it.
This module is a pytest plugin (`-p harness.lanes` in pyproject's addopts): it
watches each unmarked test from its setup to its teardown and fails it when
it started a process. Servers every test shares (the embedded Redis and
Postgres of a run without REDIS_URL / PG_URL) start `unguarded`.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

LANES = ("e2e", "fault", "browser")
SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system"}
)


class _Watch:
    """What the audit hook records: the processes the current unmarked test started."""

    def __init__(self) -> None:
        self.active = False
        self.paused = 0
        self.started: list[str] = []


_watch = _Watch()
_installed = False


def _describe(event: str, args: tuple[Any, ...]) -> str:
    if event == "subprocess.Popen":  # (executable, args, cwd, env)
        argv = args[1]
        argv = [argv] if isinstance(argv, str | bytes) else list(argv)
        return " ".join(str(a) for a in argv[:4]) + (" ..." if len(argv) > 4 else "")
    if event in ("os.system", "os.exec", "os.posix_spawn", "os.spawn"):
        return f"{event} {args[0]!r}"
    return event


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in SPAWN_EVENTS and _watch.active and not _watch.paused:
        _watch.started.append(_describe(event, args))


def install() -> None:
    """Once per process: an audit hook cannot be removed, and it costs a set lookup per event."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


def watch() -> None:
    """Record the processes started from now on."""
    _watch.active, _watch.started = True, []


def stop() -> list[str]:
    """Stop recording; what was started while recording."""
    started, _watch.active, _watch.started = _watch.started, False, []
    return started


@contextmanager
def unguarded() -> Iterator[None]:
    """Processes started in this block are shared infrastructure, not the test's."""
    _watch.paused += 1
    try:
        yield
    finally:
        _watch.paused -= 1


def in_a_lane(item: pytest.Item) -> bool:
    return any(marker.name in LANES for marker in item.iter_markers())


# --- the pytest plugin ------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    install()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if not in_a_lane(item):
        watch()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if call.when == "teardown" and (started := stop()) and not report.failed:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} started a process ({started[0]}) but is not marked {' / '.join(LANES)}: "
            "mark it, so that the fast lane (`make test-fast`) leaves it out"
        )
    return report
