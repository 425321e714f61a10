"""`python -m services.feeder` as a child process, with its JSON log lines collected."""

from __future__ import annotations

import contextlib
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

STOP_TIMEOUT_S = 10.0
ROOT = Path(__file__).resolve().parents[2]


class FeederProcess:
    """`python -m services.feeder` as a child process; its stdout (JSON log lines) is collected."""

    def __init__(self, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.summary_path = workdir / "summary.json"
        self.acked_path = workdir / "acked.txt"
        self.acked_events_path = workdir / "acked-events.txt"
        argv = [
            *args,
            *("--summary-json", str(self.summary_path)),
            *("--acked-ids", str(self.acked_path)),
            *("--acked-events", str(self.acked_events_path)),
        ]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.feeder", *argv],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.put(raw.decode(errors="replace"))

    def _drain(self) -> None:
        while True:
            try:
                self.output.append(self.lines.get_nowait())
            except queue.Empty:
                return

    def wait_for_line(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.output.append(line)
            if needle in line:
                return line
        self.kill()
        raise AssertionError(f"no line with {needle!r} within {timeout}s; output:\n{''.join(self.output)}")

    def wait(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self.close()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)
        self.close()

    def close(self) -> None:
        self._reader.join(STOP_TIMEOUT_S)
        self._drain()
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.stdout.close()

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines whose event is `name`."""
        out = []
        for line in self.output:
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
                if isinstance(record, dict) and record.get("event") == name:
                    out.append(record)
        return out

    def summary(self) -> dict[str, Any]:
        return orjson.loads(self.summary_path.read_bytes())

    def acked_ids(self) -> list[str]:
        return self.acked_path.read_text().splitlines()

    def acked_events(self) -> dict[str, list[str]]:
        """The acknowledged trade-pipeline event_ids, by kind."""
        out: dict[str, list[str]] = {}
        for line in self.acked_events_path.read_text().splitlines():
            kind, event_id = line.split(" ", 1)
            out.setdefault(kind, []).append(event_id)
        return out
