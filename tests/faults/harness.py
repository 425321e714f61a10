"""A feeder at a steady rate against the real processes, and the checks every fault test ends with.

`FaultRun.verify()` waits for the stack to settle, then checks the promise:
every acknowledged event_id is in Postgres exactly once (only unacknowledged
ones may be missing), the views (calc-a candles) and the ingest counters
agree with what reached Postgres, nothing is left queued, started or failed
in RQ, and every process reports ready again by itself. It returns the
counts; with MDSTACK_FAULT_REPORT set they are appended there as JSON lines.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import psycopg
import redis
from prometheus_client.parser import text_string_to_metric_families

from harness.http import http
from harness.polling import until
from harness.stack import Stack, isolated_settings
from services.common.db import migrate
from services.common.jobs import job_queue
from services.common.keys import Keys
from services.common.settings import Settings
from tests.keys import unbounded_keys

SYMBOLS = ("FLTAAA", "FLTBBB", "FLTCCC")
SETTLE_TIMEOUT_S = 60.0
NOTHING_LEFT = {"queued": 0, "started": 0, "failed": 0, "scheduled": 0, "intermediate": 0}


@contextmanager
def running(settings: Settings, workdir: Path, **env: str) -> Iterator[Stack]:
    """API, two workers, flusher and gateway, with `env` added; workers and flusher serve /health/*."""
    stack = Stack(settings, workdir)
    stack.env.update(env)
    try:
        stack.up(health=True)
        yield stack
    finally:
        stack.stop_all()


def own_settings(settings: Settings, **urls: str) -> Settings:
    """The test's settings on other servers (a private Redis or Postgres), the database migrated."""
    s = isolated_settings(
        urls.get("REDIS_URL", settings.redis_url),
        urls.get("PG_URL", settings.pg_url),
        "f",
        INGEST_USERNAME=settings.INGEST_USERNAME,
        INGEST_PASSWORD=settings.INGEST_PASSWORD,
        INTERNAL_TOKEN=settings.INTERNAL_TOKEN,
    )
    migrate(s)
    return s


class FaultRun:
    def __init__(self, stack: Stack, workdir: Path, name: str) -> None:
        self.stack = stack
        self.settings = stack.settings
        self.name = name
        self.acked_path = workdir / "acked.txt"
        self.summary_path = workdir / "summary.json"
        self.feeder: subprocess.Popen[bytes] | None = None

    def start_feeder(self, *, tps: float = 200, duration: float = 10, batch: int = 1, **env: str) -> None:
        self.feeder = self.stack.start(
            "feeder",
            *("--tps", str(tps), "--duration", str(duration), "--batch", str(batch), "--seed", "11"),
            *("--symbols", ",".join(SYMBOLS), "--trade-tps", "0", "--quiet"),
            *("--acked-ids", str(self.acked_path), "--summary-json", str(self.summary_path)),
            **env,
        )

    def wait_accepted(self, count: int = 100, timeout: float = 30) -> None:
        """Until the API has accepted `count` events: the feeder is mid-run, traffic flows through every process."""
        until(lambda: self.system()["ingest"]["accepted_total"] >= count, timeout, what=f"{count} events accepted")

    # --- looking at the stack ---------------------------------------------------

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=5)

    def persisted(self) -> dict[str, int]:
        """event_id -> rows in md_ticks."""
        with psycopg.connect(self.settings.pg_dsn, connect_timeout=5) as conn:
            return dict(conn.execute("SELECT event_id, count(*) FROM md_ticks GROUP BY event_id").fetchall())

    def persisted_by_symbol(self) -> dict[str, int]:
        with psycopg.connect(self.settings.pg_dsn, connect_timeout=5) as conn:
            return dict(conn.execute("SELECT symbol, count(*) FROM md_ticks GROUP BY symbol").fetchall())

    def counted_in_stored_candles(self) -> dict[str, int]:
        """Ticks the flusher merged into md_candles, per symbol and interval: each interval must count each once."""
        with psycopg.connect(self.settings.pg_dsn, connect_timeout=5) as conn:
            found = conn.execute('SELECT symbol, "interval", sum(count) FROM md_candles GROUP BY 1, 2').fetchall()
        return {f"{symbol}/{interval}": int(n) for symbol, interval, n in found}

    def counted_in_views(self) -> dict[str, int]:
        """Ticks calc-a applied, per symbol, read back through the API (every run fits in a few 15m candles)."""
        counts = {}
        for symbol in SYMBOLS:
            answer = http().get(f"{self.stack.api_url}/symbols/{symbol}/candles", params={"interval": "15m"}, timeout=5)
            counts[symbol] = sum(c["count"] for c in answer.json()["candles"]) if answer.status_code == 200 else 0
        return counts

    def system(self) -> dict[str, Any]:
        return http().get(f"{self.stack.api_url}/system", timeout=5).json()  # type: ignore[no-any-return]

    def rq_left(self) -> dict[str, int]:
        client = self.redis()
        queue = job_queue(self.settings, client)
        left = {
            "queued": queue.count,
            "started": len(queue.started_job_registry.get_job_ids(cleanup=False)),
            "failed": len(queue.failed_job_registry.get_job_ids()),
            "scheduled": len(queue.scheduled_job_registry.get_job_ids()),
            "intermediate": len(queue.intermediate_queue.get_job_ids()),
        }
        client.close()
        return left

    def unflushed(self) -> int:
        client = self.redis()
        value = int(client.get(Keys(self.settings.KEY_PREFIX).backlog) or 0)
        client.close()
        return value

    # --- the end of every fault test ---------------------------------------------

    def wait_feeder(self, timeout: float = 60) -> dict[str, Any]:
        assert self.feeder is not None
        self.feeder.wait(timeout)
        return orjson.loads(self.summary_path.read_bytes())  # type: ignore[no-any-return]

    def verify(self, **extra: Any) -> dict[str, Any]:
        summary = self.wait_feeder()
        acked = self.acked_path.read_text().split()
        assert len(acked) == len(set(acked)) == summary["acknowledged"]
        assert acked, "the feeder got nothing acknowledged"

        self.stack.wait_ready(SETTLE_TIMEOUT_S)  # every process ready again, by itself
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            rows = self.persisted()
            settled = set(acked) <= set(rows) and self.unflushed() == 0
            settled = settled and self.counted_in_views() == self.persisted_by_symbol()
            settled = settled and self.rq_left() == NOTHING_LEFT
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.25)

        rows = self.persisted()
        missing = set(acked) - set(rows)
        duplicates = {event_id: n for event_id, n in rows.items() if n > 1}
        result = {
            "fault": self.name,
            "sent": summary["sent"],
            "acknowledged": len(acked),
            "persisted": len(rows),
            "persisted_unacknowledged": len(set(rows) - set(acked)),
            "missing": len(missing),
            "duplicates": len(duplicates),
            "feeder_retries": summary["retries"],
            "feeder_errors": summary["errors_by_cause"],
            **extra,
        }
        report(result)
        assert not missing, f"{len(missing)} acknowledged ticks are not in Postgres: {sorted(missing)[:5]}"
        assert not duplicates, f"duplicate rows: {list(duplicates.items())[:5]}"
        assert self.unflushed() == 0
        left = self.rq_left()
        assert left == NOTHING_LEFT, f"RQ still holds jobs: {left}"
        by_symbol = self.persisted_by_symbol()
        views = self.counted_in_views()
        assert views == by_symbol, f"views disagree with Postgres: candles count {views}, Postgres holds {by_symbol}"
        expected = {f"{symbol}/{interval}": n for symbol, n in by_symbol.items() for interval in ("1m", "5m", "15m")}
        assert self.counted_in_stored_candles() == expected, "md_candles disagrees with md_ticks"
        assert unbounded_keys(self.settings) == [], "Redis keys that would grow forever"
        accepted = self.system()["ingest"]["accepted_by_kind"].get("tick", 0)
        assert accepted == len(rows) == sum(by_symbol.values()), "ingest's accepted count disagrees with Postgres"
        return result


def report(result: dict[str, Any]) -> None:
    print("fault-test", orjson.dumps(result).decode())  # noqa: T201 - shown with -s or on failure
    path = os.environ.get("MDSTACK_FAULT_REPORT")
    if path:
        with Path(path).open("a") as out:
            out.write(orjson.dumps(result).decode() + "\n")


def feeder_statuses(stack: Stack) -> Counter[str]:
    """Status codes the API answered ingest with, from its /metrics (this API process only)."""
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(http().get(f"{stack.api_url}/metrics", timeout=5).text):
        for sample in family.samples:
            if sample.name == "mdstack_http_requests_total" and sample.labels["route"].startswith("/ingest/"):
                counts[sample.labels["status"]] += int(sample.value)
    return counts
