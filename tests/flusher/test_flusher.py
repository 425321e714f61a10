"""The flusher against real Redis and Postgres: batching, commit-then-ack, crashes at every step."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from harness.stack import Stack
from services.common.embedded import free_port
from services.common.keys import FLUSH_GROUP, Keys
from services.common.kinds import TICK
from services.common.settings import Settings
from services.flusher.writer import Flusher
from services.orchestrator_api.ingest.commit import GroupCommitter


def accept(settings: Settings, n: int, *, symbol: str = "BTCUSDT") -> list[str]:
    """Ticks through the API's own commit path (dedup, batch, flush stream, job)."""
    client = redis.Redis.from_url(settings.redis_url)
    committer = GroupCommitter(settings, client)
    now = int(time.time() * 1000)
    ticks = [
        {
            "event_id": uuid.uuid4().hex,
            "symbol": symbol,
            "price": 100.0 + i,
            "volume": 1.0,
            "source": "t",
            "ts": now - i,
            "received_at": time.time() * 1000,
        }
        for i in range(n)
    ]
    assert all(committer._commit([[(TICK, t["event_id"], t) for t in ticks]]))
    client.close()
    return [t["event_id"] for t in ticks]


def rows(settings: Settings) -> dict[str, int]:
    """event_id -> how many rows hold it."""
    with psycopg.connect(settings.pg_dsn) as conn:
        return dict(conn.execute("SELECT event_id, count(*) FROM md_ticks GROUP BY event_id").fetchall())


def backlog(settings: Settings) -> tuple[int, int]:
    client = redis.Redis.from_url(settings.redis_url)
    stream = Keys(settings.KEY_PREFIX).flush_stream
    pending = client.xpending(stream, FLUSH_GROUP)["pending"]
    length = client.xlen(stream)
    client.close()
    return length, pending


@pytest.fixture(autouse=True)
def _close_flushers() -> Iterator[None]:
    yield
    for f in _made:
        f.close()
        f.redis.close()
    _made.clear()


_made: list[Flusher] = []


def flusher(settings: Settings, name: str = "f1") -> Flusher:
    f = Flusher(settings, redis.Redis.from_url(settings.redis_url), name)
    f.ensure_group()
    _made.append(f)
    return f


def test_batch_closes_at_max_rows(settings: Settings) -> None:
    settings.FLUSH_MAX_ROWS = 10
    settings.FLUSH_INTERVAL_MS = 60_000  # never reached: size decides
    ids = [*accept(settings, 6), *accept(settings, 6), *accept(settings, 6)]
    started = time.monotonic()

    f = flusher(settings)
    assert f.flush_once() == 12  # whole entries: the one that passed 10 rows closes the batch
    settings.FLUSH_INTERVAL_MS = 100  # the last 6 rows, after the interval
    assert f.flush_once() == 6

    assert time.monotonic() - started < 5
    assert rows(settings) == dict.fromkeys(ids, 1)
    assert backlog(settings) == (0, 0)


def test_reads_after_the_first_entry_take_no_more_than_the_batch_has_room_for(settings: Settings) -> None:
    """Once a batch holds an entry the flusher reads every GATHER_MS, not per commit; what piled up meanwhile is
    read as far as FLUSH_MAX_ROWS allows, at the batch's rows per entry, and left for the next batch."""
    settings.FLUSH_MAX_ROWS = 20
    settings.FLUSH_INTERVAL_MS = 60_000  # never reached: size decides
    first = accept(settings, 5)
    later = threading.Timer(0.02, lambda: [accept(settings, 5) for _ in range(40)])  # during the first pause
    later.start()
    f = flusher(settings)

    batch = f.collect()

    later.join()
    assert batch.size == 20  # 4 entries of 5, not the 200 rows that had piled up
    assert len(batch.entry_ids) == 4
    f._write_until_done(batch)
    f.acknowledge(batch)
    assert set(first) <= set(rows(settings))
    assert f.flush_once() == 20  # the rest waits for the next batches, 20 rows each
    assert backlog(settings)[0] == 41 - 8  # stream entries left


def test_batch_closes_at_interval(settings: Settings) -> None:
    settings.FLUSH_INTERVAL_MS = 200
    ids = accept(settings, 3)
    started = time.monotonic()

    assert flusher(settings).flush_once() == 3

    assert time.monotonic() - started < 5
    assert rows(settings) == dict.fromkeys(ids, 1)


def test_after_an_empty_round_the_first_entries_are_written_as_one_blocking_read_brings_them(
    settings: Settings,
) -> None:
    settings.FLUSH_INTERVAL_MS = 60_000  # never reached: the idle read returns with the first entry
    f = flusher(settings)
    assert f.flush_once(wait_ms=100) == 0  # nothing came: the round is empty, and the flusher idle
    assert f.idle
    arrived: list[str] = []
    later = threading.Timer(0.3, lambda: arrived.extend(accept(settings, 3)))
    later.start()
    started = time.monotonic()

    assert f.flush_once(wait_ms=4000) == 3

    later.join()
    assert time.monotonic() - started < 5
    assert not f.idle
    assert rows(settings) == dict.fromkeys(arrived, 1)
    assert backlog(settings) == (0, 0)


def test_killed_before_commit_the_same_consumer_writes_its_pending_batch(settings: Settings) -> None:
    settings.FLUSH_INTERVAL_MS = 100
    ids = accept(settings, 5)
    crashed = flusher(settings, "f1")
    batch = crashed.collect()  # read, then "killed": never written, never acknowledged
    assert batch.size == 5
    assert backlog(settings) == (1, 1)

    restarted = flusher(settings, "f1")

    assert restarted.flush_once() == 5
    assert rows(settings) == dict.fromkeys(ids, 1)
    assert backlog(settings) == (0, 0)


def test_killed_before_commit_another_flusher_claims_the_batch(settings: Settings) -> None:
    settings.FLUSH_INTERVAL_MS = 100
    settings.FLUSH_CLAIM_IDLE_MS = 0
    ids = accept(settings, 4)
    flusher(settings, "dead").collect()

    assert flusher(settings, "other").flush_once() == 4
    assert rows(settings) == dict.fromkeys(ids, 1)
    assert backlog(settings) == (0, 0)


def test_killed_after_commit_before_ack_writes_nothing_twice(settings: Settings) -> None:
    settings.FLUSH_INTERVAL_MS = 100
    ids = accept(settings, 7)
    crashed = flusher(settings, "f1")
    batch = crashed.collect()
    assert crashed.write(batch) == 7  # committed, then "killed" before the ack

    assert flusher(settings, "f1").flush_once() == 0  # re-written, all conflicts

    assert rows(settings) == dict.fromkeys(ids, 1)
    assert backlog(settings) == (0, 0)
    assert unflushed(settings) == 0


def test_backlog_count_follows_ingest_and_each_entry_comes_off_once(settings: Settings) -> None:
    settings.FLUSH_INTERVAL_MS = 100
    settings.FLUSH_CLAIM_IDLE_MS = 0
    accept(settings, 30)
    accept(settings, 12)
    assert unflushed(settings) == 42
    slow = flusher(settings, "slow")
    batch = slow.collect()
    slow.write(batch)  # committed, but its ack comes late: another flusher claims the entries meanwhile

    assert flusher(settings, "fast").flush_once() == 0
    assert unflushed(settings) == 0
    slow.acknowledge(batch)
    assert unflushed(settings) == 0  # not -42


def unflushed(settings: Settings) -> int:
    """The backlog count ingest's back-pressure reads (INGEST_MAX_BACKLOG)."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return int(client.get(Keys(settings.KEY_PREFIX).backlog) or 0)
    finally:
        client.close()


def test_postgres_down_keeps_the_batch_in_redis(settings: Settings) -> None:
    settings.FLUSH_INTERVAL_MS = 100
    settings.FLUSH_CLAIM_IDLE_MS = 0
    ids = accept(settings, 3)
    down = settings.model_copy(update={"PG_URL": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"})
    f = flusher(down, "f1")
    threading.Timer(0.5, f.stop.set).start()

    with pytest.raises(psycopg.OperationalError):
        f.flush_once()  # retries with back-off until asked to stop

    assert backlog(settings) == (1, 1)
    assert flusher(settings, "f2").flush_once() == 3
    assert rows(settings) == dict.fromkeys(ids, 1)


@pytest.mark.e2e
def test_flusher_killed_with_sigkill_mid_run_loses_and_duplicates_nothing(settings: Settings, tmp_path: Path) -> None:
    stack = Stack(settings, tmp_path)

    def flusher_process() -> subprocess.Popen[bytes]:
        """A flusher that has started reading (start-up alone can take longer than a round on a busy box)."""
        proc = stack.start("flusher", FLUSHER_NAME="flusher-kill-test", FLUSH_MAX_ROWS="50", FLUSH_INTERVAL_MS="20")
        client = redis.Redis.from_url(settings.redis_url)
        started = time.monotonic()
        while not read_since(client, started) and time.monotonic() < started + 20:
            time.sleep(0.02)
        client.close()
        return proc

    def read_since(client: redis.Redis, started: float) -> bool:
        try:
            consumers = client.xinfo_consumers(Keys(settings.KEY_PREFIX).flush_stream, FLUSH_GROUP)
        except redis.ResponseError:  # no stream or group yet
            return False
        return any(c["idle"] < (time.monotonic() - started) * 1000 for c in consumers)

    accepted: list[str] = []
    for round_ in range(4):
        proc = flusher_process()
        deadline = time.monotonic() + 0.6 + round_ * 0.1
        while time.monotonic() < deadline:
            accepted += accept(settings, 40)
            time.sleep(0.01)
        proc.kill()  # SIGKILL: no chance to finish the batch
        proc.wait(10)
    accepted += accept(settings, 40)
    proc = flusher_process()
    try:
        deadline = time.monotonic() + 30
        while backlog(settings) != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0

    assert backlog(settings) == (0, 0)
    assert rows(settings) == dict.fromkeys(accepted, 1)
