"""Poison rows: dead-lettered after FLUSH_POISON_ATTEMPTS, while the rest of the batch and later batches persist."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
import redis
from prometheus_client import REGISTRY

from services.common.embedded import free_port
from services.common.keys import Keys
from services.common.settings import Settings
from services.consumers.rttm import alerts
from services.flusher import dead_letter
from services.flusher.writer import Flusher
from tests.flusher.test_flusher import accept, backlog, rows, unflushed

GUARD_S = 60.0  # without dead-lettering, flush_once would retry forever: stop it so the test fails instead


def now_ms() -> int:
    return int(time.time() * 1000)


def raw_tick(**fields: object) -> dict[str, object]:
    """A tick as a flush stream entry holds it (already validated, epoch ms)."""
    return {
        "event_id": uuid.uuid4().hex,
        "symbol": "POISON",
        "price": 10.0,
        "volume": 1.0,
        "source": "t",
        "ts": now_ms(),
        "received_at": time.time() * 1000,
        **fields,
    }


def alert_row(**fields: object) -> dict[str, object]:
    """An alert transition as `alerts._record` writes it."""
    return {
        "event_key": f"{uuid.uuid4().hex}:fired",
        "event_id": None,
        "alert_id": uuid.uuid4().hex,
        "rule": "dlq_per_min",
        "state": "fired",
        "value": 0.0,
        "threshold": 30.0,
        "message": "dlq_per_min is 0; threshold 30",
        "event_time": now_ms(),
        "received_at": time.time() * 1000,
        **fields,
    }


def add_entry(settings: Settings, items: dict[str, list[dict[str, object]]]) -> None:
    """A flush stream entry written the way ingest.lua writes one (entry, then the backlog count)."""
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.KEY_PREFIX)
    n = sum(len(records) for records in items.values())
    with client.pipeline(transaction=True) as pipe:
        pipe.xadd(keys.flush_stream, {"batch": uuid.uuid4().hex, "items": orjson.dumps(items), "n": n})
        pipe.incrby(keys.backlog, n)
        pipe.execute()
    client.close()


def dead_letters(settings: Settings) -> dict[tuple[str, str], tuple[str, str]]:
    """(kind, event_key) -> (record, error)."""
    with psycopg.connect(settings.pg_dsn) as conn:
        found = conn.execute("SELECT kind, event_key, record, error FROM md_dead_letters").fetchall()
    return {(kind, key): (record, error) for kind, key, record, error in found}


def counted(kind: str) -> float:
    return REGISTRY.get_sample_value("mdstack_flusher_dead_letters_total", {"kind": kind}) or 0.0


@pytest.fixture
def flusher(settings: Settings) -> Iterator[Flusher]:
    settings.FLUSH_INTERVAL_MS = 100
    f = Flusher(settings, redis.Redis.from_url(settings.redis_url), "f1")
    f.ensure_group()
    guard = threading.Timer(GUARD_S, f.stop.set)
    guard.start()
    yield f
    guard.cancel()
    f.close()
    f.redis.close()


def test_poison_rows_are_dead_lettered_while_the_rest_of_the_batch_persists(
    settings: Settings, flusher: Flusher
) -> None:
    before = {kind: counted(kind) for kind in ("tick", "alert")}
    good_before = accept(settings, 5)
    nul = raw_tick(source="feed\x00a")  # Postgres text cannot hold NUL: COPY refuses the row
    far = raw_tick(ts=1e20)  # to_timestamp(): timestamp out of range
    null_threshold = alert_row(threshold=None)  # what RTTM_ALERT_*=-inf became through orjson: NOT NULL
    nested = raw_tick(source={"nested": 1})  # psycopg cannot adapt it: refused before it reaches the server
    mixed = [raw_tick(), nul, raw_tick(), far, raw_tick(), nested]
    add_entry(settings, {"tick": mixed, "alert": [alert_row(), null_threshold]})
    good_after = accept(settings, 5)

    inserted = flusher.flush_once()

    good = [*good_before, *(t["event_id"] for t in (mixed[0], mixed[2], mixed[4])), *good_after]
    assert inserted == len(good) + 1  # and the good alert
    assert rows(settings) == dict.fromkeys(good, 1)
    letters = dead_letters(settings)
    assert sorted(letters) == sorted(
        [
            ("tick", nul["event_id"]),
            ("tick", far["event_id"]),
            ("tick", nested["event_id"]),
            ("alert", null_threshold["event_key"]),
        ]
    )
    record, error = letters[("tick", nul["event_id"])]
    assert orjson.loads(record)["source"] == "feed\x00a"  # kept whole, as JSON text (jsonb cannot hold NUL)
    assert "0x00" in error
    assert "out of range" in letters[("tick", far["event_id"])][1]
    assert 'null value in column "threshold"' in letters[("alert", null_threshold["event_key"])][1]
    assert "cannot adapt type 'dict'" in letters[("tick", nested["event_id"])][1]
    assert counted("tick") - before["tick"] == 3
    assert counted("alert") - before["alert"] == 1
    assert backlog(settings) == (0, 0)
    assert unflushed(settings) == 0  # dead-lettered items come off the backlog count too


def test_later_batches_persist_after_a_poison_batch(settings: Settings, flusher: Flusher) -> None:
    poison = raw_tick(source="x\x00")
    add_entry(settings, {"tick": [poison]})
    flusher.flush_once()
    later = accept(settings, 4)

    assert flusher.flush_once() == 4

    assert rows(settings) == dict.fromkeys(later, 1)
    assert list(dead_letters(settings)) == [("tick", poison["event_id"])]
    assert backlog(settings) == (0, 0)


@pytest.mark.slow  # retries the poison batch with backoff
def test_poison_is_retried_flush_poison_attempts_times_before_it_is_dead_lettered(
    settings: Settings, flusher: Flusher
) -> None:
    settings.FLUSH_POISON_ATTEMPTS = 4
    add_entry(settings, {"tick": [raw_tick(source="x\x00")]})
    failed = REGISTRY.get_sample_value("mdstack_flush_errors_total", {"backend": "postgres"}) or 0.0

    flusher.flush_once()

    # 4 failed attempts of the whole batch; a one-row batch needs no bisecting: its row is the poison.
    assert (REGISTRY.get_sample_value("mdstack_flush_errors_total", {"backend": "postgres"}) or 0.0) - failed == 4
    assert len(dead_letters(settings)) == 1


@pytest.mark.slow  # retries the poison batch with backoff
def test_a_batch_dead_lettered_twice_is_stored_and_counted_once(settings: Settings, flusher: Flusher) -> None:
    poison = raw_tick(source="x\x00")
    add_entry(settings, {"tick": [poison, raw_tick()]})
    batch = flusher.collect()
    assert flusher._write_until_done(batch) == 1  # the good row and the dead letter, then "killed" before the ack
    before = counted("tick")
    restarted = Flusher(settings, flusher.redis, "f1")

    assert restarted.flush_once() == 0  # re-read as its own pending entry: every row already handled
    restarted.close()

    assert list(dead_letters(settings)) == [("tick", poison["event_id"])]
    assert counted("tick") == before
    with psycopg.connect(settings.pg_dsn) as conn:  # the good row's candles hold it once
        assert conn.execute('SELECT "interval", count FROM md_candles ORDER BY 1').fetchall() == [
            ("15m", 1),
            ("1m", 1),
            ("5m", 1),
        ]
    assert backlog(settings) == (0, 0)


def test_unreadable_stream_entry_is_dead_lettered_not_fatal(settings: Settings, flusher: Flusher) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.KEY_PREFIX)
    entry_id = client.xadd(keys.flush_stream, {"batch": "b-unknown", "items": b'{"nokind": [{"a": 1}]}', "n": 1})
    client.incrby(keys.backlog, 1)
    client.xadd(keys.flush_stream, {"batch": "b-garbled", "items": b"{not json", "n": 2})
    client.incrby(keys.backlog, 2)
    client.close()
    good = accept(settings, 3)

    assert flusher.flush_once() == 3

    assert rows(settings) == dict.fromkeys(good, 1)
    letters = dead_letters(settings)
    assert sorted(kind for kind, _ in letters) == ["entry", "entry"]
    assert ("entry", entry_id.decode()) in letters
    assert "unknown kind 'nokind'" in letters[("entry", entry_id.decode())][1]
    assert backlog(settings) == (0, 0)
    assert unflushed(settings) == 0


@pytest.mark.slow  # retries a Postgres that is down for a second
def test_postgres_down_is_not_poison_the_batch_stays_pending(settings: Settings, flusher: Flusher) -> None:
    """A transient failure never dead-letters: connection errors retry until stopped, however many attempts."""
    settings.FLUSH_POISON_ATTEMPTS = 1
    ids = accept(settings, 3)
    down = settings.model_copy(update={"PG_URL": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"})
    f = Flusher(down, redis.Redis.from_url(settings.redis_url), "f1")
    threading.Timer(1.0, f.stop.set).start()

    with pytest.raises(psycopg.OperationalError):
        f.flush_once()
    f.redis.close()

    assert backlog(settings) == (1, 1)
    assert flusher.flush_once() == 3
    assert rows(settings) == dict.fromkeys(ids, 1)
    assert dead_letters(settings) == {}


def test_only_errors_caused_by_the_data_are_poison(settings: Settings) -> None:
    def error_of(sql: str, dsn: str = settings.pg_dsn) -> psycopg.Error:
        try:
            with psycopg.connect(dsn, connect_timeout=5) as conn:
                conn.execute(sql)
        except psycopg.Error as exc:
            return exc
        raise AssertionError(f"{sql} did not fail")

    refused = f"postgresql://postgres@127.0.0.1:{free_port()}/test"

    assert dead_letter.is_poison(error_of("SELECT 1 / 0"))  # 22012
    assert dead_letter.is_poison(error_of("SELECT 'x'::float8"))  # 22P02
    assert not dead_letter.is_poison(error_of("SELECT * FROM no_such_table"))  # 42P01: migrations missing
    assert not dead_letter.is_poison(error_of("SET statement_timeout = 1; SELECT pg_sleep(1)"))  # 57014
    assert not dead_letter.is_poison(error_of("SELECT pg_sleep(1)", refused))  # connection refused


def test_expired_dead_letters_are_deleted(settings: Settings) -> None:
    settings.DEAD_LETTER_RETENTION_DAYS = 30
    now = datetime(2026, 3, 1, tzinfo=UTC)
    with psycopg.connect(settings.pg_dsn) as conn:
        for key, age_days in (("old", 31), ("edge", 30), ("young", 29)):
            conn.execute(
                "INSERT INTO md_dead_letters (kind, event_key, record, error, failed_at) "
                "VALUES ('tick', %s, '{}', 'e', %s)",
                (key, now - timedelta(days=age_days)),
            )
        conn.commit()

        assert dead_letter.delete_expired_dead_letters(conn, now, settings) == 1

        assert sorted(k for (k,) in conn.execute("SELECT event_key FROM md_dead_letters")) == ["edge", "young"]


def test_infinite_alert_threshold_is_refused_at_start(settings: Settings) -> None:
    """The hole that let a NULL threshold reach the flusher: -inf fires at once and orjson writes it as null."""
    settings.RTTM_ALERT_DLQ_PER_MIN = float("-inf")

    with pytest.raises(ValueError, match=r"alert rule 'dlq_per_min': threshold must be a finite number, not -inf"):
        alerts.load_rules(settings)
