"""Log rendering: JSON lines for machines, structlog's console lines on a terminal, the same keys either way."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from services.common.logging import use_console
from services.up import child_log_format

# One INFO line with the ids, one per-flush DEBUG line and a line of uvicorn's (stdlib, with an ANSI copy of
# itself as an `extra`), at the default level, in a process of its own.
EMIT = (
    "import logging;"
    "from services.common.logging import configure_logging, get_logger;"
    "configure_logging('flusher');"
    "get_logger('t').info('flusher.started', event_id='e-1', trace_id='b-1');"
    "get_logger('t').debug('flusher.flushed', rows=3);"
    "logging.getLogger('uvicorn.error').info('Started', extra={'color_message': 'Started in colour'})"
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@contextlib.contextmanager
def terminal() -> Iterator[tuple[int, TextIO]]:
    """A real pseudo-terminal: the master fd (to read what was written) and the slave end as a text stream."""
    master, slave = os.openpty()
    stream = open(slave, "w")  # noqa: SIM115 - closed below, with the master
    try:
        yield master, stream
    finally:
        stream.close()
        os.close(master)


def emit(stdout: TextIO | int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"}  # the default: auto
    subprocess.run([sys.executable, "-c", EMIT], stdout=stdout, env=env, timeout=60, check=True)


def read_available(fd: int) -> str:
    out = b""
    while select.select([fd], [], [], 0.5)[0]:
        out += os.read(fd, 65536)
    return out.decode()


def test_auto_renders_for_people_only_on_a_terminal(tmp_path: Path) -> None:
    with terminal() as (_, tty):
        assert use_console("auto", tty)
        assert not use_console("json", tty)
    with (tmp_path / "log").open("w") as file:
        assert not use_console("auto", file)
        assert use_console("console", file)


def test_unknown_log_format_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT must be one of auto, json, console, got 'pretty'"):
        use_console("pretty", sys.stdout)


def test_up_hands_its_services_the_format_its_own_stdout_calls_for(tmp_path: Path) -> None:
    with terminal() as (_, tty):
        assert child_log_format("auto", tty) == "console"
        assert child_log_format("json", tty) == "json"
    with (tmp_path / "log").open("w") as file:
        assert child_log_format("auto", file) == "json"
        assert child_log_format("console", file) == "console"


@pytest.mark.e2e
def test_a_process_on_a_pipe_writes_json_lines_with_service_and_ids() -> None:
    read, write = os.pipe()
    with open(read) as out:
        emit(write)
        os.close(write)
        lines = out.read().splitlines()
    assert len(lines) == 2  # the per-flush line is DEBUG: not shown at INFO
    line, uvicorn = map(json.loads, lines)
    assert {k: uvicorn[k] for k in ("event", "service", "level")} == {
        "event": "Started",
        "service": "flusher",
        "level": "info",
    }
    assert "color_message" not in uvicorn
    assert {k: line[k] for k in ("event", "service", "event_id", "trace_id", "level")} == {
        "event": "flusher.started",
        "service": "flusher",
        "event_id": "e-1",
        "trace_id": "b-1",
        "level": "info",
    }


@pytest.mark.e2e
def test_a_process_on_a_terminal_writes_console_lines_with_service_and_ids() -> None:
    with terminal() as (master, tty):
        emit(tty)
        text = read_available(master)
    lines = [ANSI.sub("", line) for line in text.splitlines() if line.strip()]
    assert len(lines) == 2, text  # the per-flush line is DEBUG here too
    assert "color" not in lines[1]
    assert not lines[0].startswith("{")
    assert "[info     ] flusher.started" in lines[0]
    for pair in ("event_id=e-1", "service=flusher", "trace_id=b-1"):
        assert pair in lines[0]
