"""Daily partitions against a real Postgres: made ahead, dropped past retention, the default partition,
exactly once across partitions, the 0002 -> 0003 migration, and the flusher process running maintenance.

Each test gets a database of its own (partition DDL outlives TRUNCATE); time is simulated by passing
`now` to `maintain`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import redis
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url

from harness.stack import Stack, isolated_settings, purge, scratch_database
from services.common.db import PARTITIONED, migrate
from services.common.kinds import KINDS
from services.common.settings import Settings
from services.flusher.partitions import LOCK_KEY, Partition, day_name, maintain, partitions
from services.flusher.writer import Batch, Flusher

pytestmark = pytest.mark.slow  # partition DDL on scratch databases: seconds per test
NOW = datetime(2030, 1, 10, 12, 0, tzinfo=UTC)
FOREVER = 100_000  # retention_days that drops nothing
TABLES = [t.name for t in PARTITIONED]


@pytest.fixture(scope="module")
def template(pg_admin_url: str) -> Iterator[str]:
    """A database migrated to head, copied for each test (much faster than migrating each time)."""
    with scratch_database(pg_admin_url, "mdstack_part_template") as url:
        yield make_url(url).database or ""


@pytest.fixture
def fresh(redis_url: str, pg_admin_url: str, template: str) -> Iterator[Settings]:
    """Settings on a new database migrated to head (and a Redis prefix of their own, for the flusher)."""
    admin = make_url(pg_admin_url).set(drivername="postgresql")
    name = f"mdstack_part_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    s = isolated_settings(redis_url, admin.set(database=name).render_as_string(hide_password=False), "p")
    yield s
    purge(s)
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(settings.pg_dsn, autocommit=True)


def ms(when: datetime) -> float:
    return when.timestamp() * 1000.0


def tick(*, event_id: str, ts: datetime, received_ms: float = 1.0, symbol: str = "BTCUSDT") -> tuple[object, ...]:
    """A row as the flusher's stage table takes it (KINDS["tick"].columns order)."""
    record: dict[str, object] = {"event_id": event_id, "symbol": symbol, "price": 100.0, "volume": 1.0}
    record |= {"source": "t", "ts": ms(ts), "received_at": received_ms}
    return tuple(record[c] for c in KINDS["tick"].columns)


def trade(*, event_key: str, event_time: datetime, received_ms: float = 1.0) -> tuple[object, ...]:
    record: dict[str, object] = {"event_key": event_key, "event_id": event_key, "trade_id": "T1", "service_name": "svc"}
    record |= {"event_type": "TRADE_RECEIVED", "event_status": "OK", "event_time": ms(event_time)}
    record |= {"received_at": received_ms}
    return tuple(record.get(c) for c in KINDS["trade"].columns)


def write(settings: Settings, kind: str, rows: list[tuple[object, ...]]) -> int:
    """One batch through the flusher's own write (COPY + INSERT, one transaction); returns rows new."""
    flusher = Flusher(settings, redis.Redis.from_url(settings.redis_url), "p")
    try:
        return flusher.write(Batch(rows={kind: rows}))
    finally:
        flusher.close()
        flusher.redis.close()


def placed(settings: Settings) -> list[tuple[str, str, datetime]]:
    """(partition, event_id, ts) of every tick."""
    with connect(settings) as conn:
        return conn.execute("SELECT tableoid::regclass::text, event_id, ts FROM md_ticks ORDER BY event_id").fetchall()


def names(settings: Settings, table: str) -> list[str]:
    with connect(settings) as conn:
        return [p.name for p in partitions(conn, table)]


def dropped_metric(table: str) -> float:
    return REGISTRY.get_sample_value("mdstack_partitions_dropped_total", {"table": table}) or 0.0


def days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(count)]


def two_days(settings: Settings) -> tuple[datetime, datetime]:
    """The partitions of NOW's day and the next; returns a time in each."""
    with connect(settings) as conn:
        maintain(conn, now=NOW, retention_days=FOREVER, ahead_days=1)
    return NOW, NOW + timedelta(days=1)


def test_maintenance_creates_the_partitions_of_today_to_ahead_days_once(fresh: Settings) -> None:
    with connect(fresh) as conn:
        first = maintain(conn, now=NOW, retention_days=FOREVER, ahead_days=3)
        again = maintain(conn, now=NOW, retention_days=FOREVER, ahead_days=3)
        ticks = partitions(conn, "md_ticks")

    ahead = days(NOW.date(), 4)
    assert first is not None
    assert again is not None
    assert sorted(first.created) == sorted(day_name(t, d) for t in TABLES for d in ahead)
    assert (first.dropped, first.failed) == ([], [])
    assert (again.created, again.dropped, again.failed) == ([], [], [])  # safe to rerun
    for d in ahead:
        lower = datetime(d.year, d.month, d.day, tzinfo=UTC)
        assert Partition(day_name("md_ticks", d), lower, lower + timedelta(days=1)) in ticks
    assert Partition("md_ticks_default", None, None, default=True) in ticks


def test_maintenance_drops_whole_days_past_retention_and_counts_them(fresh: Settings) -> None:
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    with connect(fresh) as conn:
        maintain(conn, now=start, retention_days=FOREVER, ahead_days=9)  # 2030-01-01 .. 2030-01-10
    write(fresh, "tick", [tick(event_id=f"d{i}", ts=start + timedelta(days=i)) for i in range(10)])
    before = dropped_metric("md_ticks")

    with connect(fresh) as conn:  # 2030-01-10 12:00, 7 days: cut at 2030-01-03 12:00
        report = maintain(conn, now=NOW, retention_days=7, ahead_days=0)

    assert report is not None
    assert report.failed == []
    kept = [day_name("md_ticks", d) for d in days(date(2030, 1, 3), 8)]
    assert names(fresh, "md_ticks") == ["md_ticks_default", *kept]  # the migration's days went too
    assert {"md_ticks_p20300101", "md_ticks_p20300102"} <= set(report.dropped)
    assert dropped_metric("md_ticks") - before == len([p for p in report.dropped if p.startswith("md_ticks_")])
    assert [event_id for _, event_id, _ in placed(fresh)] == [f"d{i}" for i in range(2, 10)]

    with connect(fresh) as conn:  # a day later, one more day goes
        later = maintain(conn, now=datetime(2030, 1, 11, 0, 0, 1, tzinfo=UTC), retention_days=7, ahead_days=0)
    assert later is not None
    assert [p for p in later.dropped if p.startswith("md_ticks_")] == ["md_ticks_p20300103"]
    assert later.created == [day_name(t, date(2030, 1, 11)) for t in TABLES]


def test_rows_outside_the_partitions_go_to_the_default_partition_until_maintenance(fresh: Settings) -> None:
    now = datetime.now(UTC)
    future = now + timedelta(days=5)  # past the migration's 2 days ahead
    rows = [tick(event_id="old", ts=datetime(2001, 1, 1, tzinfo=UTC)), tick(event_id="future", ts=future)]
    assert write(fresh, "tick", [*rows, tick(event_id="today", ts=now)]) == 3  # no insert fails

    today, later = day_name("md_ticks", now.date()), day_name("md_ticks", future.date())
    assert [(p, e) for p, e, _ in placed(fresh)] == [
        ("md_ticks_default", "future"), ("md_ticks_default", "old"), (today, "today")
    ]  # fmt: skip

    with connect(fresh) as conn:
        report = maintain(conn, now=now, retention_days=7, ahead_days=5)

    assert report is not None
    assert report.failed == []
    assert (report.moved_from_default, report.deleted_from_default) == (1, 1)
    assert [(p, e) for p, e, _ in placed(fresh)] == [(later, "future"), (today, "today")]


def test_a_replayed_event_in_one_batch_is_stored_once_the_first_accepted_winning(fresh: Settings) -> None:
    t1, t2 = two_days(fresh)

    batch = [
        tick(event_id="a", ts=t1, received_ms=1000),
        tick(event_id="a", ts=t1, received_ms=1000),  # replayed: same ts
        tick(event_id="b", ts=t2, received_ms=1000),  # first accepted wins, not the earliest ts
        tick(event_id="b", ts=t1, received_ms=2000),
    ]
    assert write(fresh, "tick", batch) == 2
    assert placed(fresh) == [("md_ticks_p20300110", "a", t1), ("md_ticks_p20300111", "b", t2)]


def test_a_replayed_event_in_two_batches_is_stored_once_in_its_days_partition(fresh: Settings) -> None:
    t1, t2 = two_days(fresh)
    old = datetime(2001, 1, 1, tzinfo=UTC)

    assert write(fresh, "tick", [tick(event_id="a", ts=t1), tick(event_id="b", ts=t2), tick(event_id="c", ts=old)]) == 3
    assert write(fresh, "tick", [tick(event_id="a", ts=t1), tick(event_id="b", ts=t2), tick(event_id="c", ts=old)]) == 0
    assert sorted(placed(fresh)) == [
        ("md_ticks_default", "c", old), ("md_ticks_p20300110", "a", t1), ("md_ticks_p20300111", "b", t2)
    ]  # fmt: skip


def test_an_event_id_reused_with_another_ts_is_a_new_row_past_the_ingest_window(fresh: Settings) -> None:
    """The key is (event_id, ts): ingest's window catches a reuse within DEDUP_WINDOW_S (test_key_budget.py)."""
    t1, t2 = two_days(fresh)

    assert write(fresh, "tick", [tick(event_id="a", ts=t1)]) == 1
    assert write(fresh, "tick", [tick(event_id="a", ts=t2)]) == 1
    assert placed(fresh) == [("md_ticks_p20300110", "a", t1), ("md_ticks_p20300111", "a", t2)]


def test_an_rttm_event_key_replayed_is_stored_once(fresh: Settings) -> None:
    t1, _ = two_days(fresh)

    assert write(fresh, "trade", [trade(event_key="k", event_time=t1), trade(event_key="k", event_time=t1)]) == 1
    assert write(fresh, "trade", [trade(event_key="k", event_time=t1)]) == 0
    with connect(fresh) as conn:
        stored = conn.execute("SELECT tableoid::regclass::text, event_key, event_time FROM rttm_trade_events")
        assert stored.fetchall() == [("rttm_trade_events_p20300110", "k", t1)]


def test_maintenance_is_skipped_while_another_flusher_holds_the_lock(fresh: Settings) -> None:
    with connect(fresh) as other, connect(fresh) as conn:
        other.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        assert maintain(conn, now=NOW, retention_days=FOREVER, ahead_days=0) is None
        assert "md_ticks_p20300110" not in names(fresh, "md_ticks")
        other.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        report = maintain(conn, now=NOW, retention_days=FOREVER, ahead_days=0)
    assert report is not None
    assert "md_ticks_p20300110" in report.created


def test_a_partition_blocked_by_an_open_transaction_is_reported_and_made_next_run(fresh: Settings) -> None:
    with connect(fresh) as reader, connect(fresh) as conn:
        with reader.transaction():
            reader.execute("SELECT count(*) FROM md_ticks")  # holds md_ticks' lock until the end of the block
            report = maintain(conn, now=NOW, retention_days=FOREVER, ahead_days=0)
        assert report is not None
        assert report.failed == ["create md_ticks_p20300110: lock not granted within 2000 ms"]
        assert sorted(report.created) == sorted(day_name(t, NOW.date()) for t in TABLES if t != "md_ticks")
        retry = maintain(conn, now=NOW, retention_days=FOREVER, ahead_days=0)
    assert retry is not None
    assert (retry.created, retry.failed) == (["md_ticks_p20300110"], [])


def _insert_sample(conn: psycopg.Connection, table: str, key: str, when: datetime, n: int) -> None:
    """One row of `table` with every column filled, its time column at `when`."""
    values: dict[str, object] = {}
    for column in next(t for t in PARTITIONED if t.name == table).columns:
        if column.name in ("event_id", "event_key"):
            values[column.name] = f"{table}-{n}"
        elif column.name not in ("id", "inserted_at", key):
            python = column.type.python_type
            values[column.name] = {str: f"{column.name}-{n}", int: n, float: n + 0.5}.get(python, when)
    values[key] = when
    cols = ", ".join(f'"{c}"' for c in values)
    conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * len(values))})", list(values.values()))


def test_migration_converts_a_0002_database_keeping_every_row(pg_admin_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    when = [now, now - timedelta(days=3), now + timedelta(days=10)]
    # 90 older days of ticks: with the 3 above, 93 days hold rows; the migration makes the 90 most recent.
    filler = [now - timedelta(days=300 - i) for i in range(90)]
    with scratch_database(pg_admin_url, "mdstack_mig", revision="0002") as url:
        settings = Settings(PG_URL=url)
        before: dict[str, list[tuple[object, ...]]] = {}
        with connect(settings) as conn:
            for table in PARTITIONED:
                key = str(table.info["partition_key"])
                for n, at in enumerate(when + filler if table.name == "md_ticks" else when):
                    _insert_sample(conn, table.name, key, at, n)
                before[table.name] = conn.execute(f"SELECT * FROM {table.name} ORDER BY id").fetchall()

        migrate(settings)

        with connect(settings) as conn:
            for table in PARTITIONED:
                assert conn.execute(f"SELECT * FROM {table.name} ORDER BY id").fetchall() == before[table.name]
            where: dict[str, str] = dict(
                conn.execute("SELECT event_id, tableoid::regclass::text FROM md_ticks").fetchall()
            )
            expected = {f"md_ticks-{n}": day_name("md_ticks", at.date()) for n, at in enumerate(when + filler)}
            for n in range(3, 6):  # the 3 oldest days: past the 90 days, in the default partition
                expected[f"md_ticks-{n}"] = "md_ticks_default"
            assert where == expected
            assert len(partitions(conn, "md_ticks")) == 90 + 2 + 1  # + tomorrow and the day after, + default
            # The id sequence carries on, and the idempotency key is unique with the partition key.
            _insert_sample(conn, "md_ticks", "ts", now, 1000)
            assert conn.execute("SELECT max(id) FROM md_ticks").fetchone() == (len(when + filler) + 1,)
            with pytest.raises(psycopg.errors.UniqueViolation, match=r"Key \(event_id, ts\)"):
                _insert_sample(conn, "md_ticks", "ts", now, 1000)
            keys = conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'md_ticks'::regclass ORDER BY conname"
            ).fetchall()
            assert keys == [
                ("md_ticks_pkey", "PRIMARY KEY (id, ts)"),
                ("uq_md_ticks_event_id_ts", "UNIQUE (event_id, ts)"),
            ]
            # History reads keep their (symbol, ts) index on every partition.
            indexed = conn.execute(
                "SELECT count(*) FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid "
                "WHERE i.inhparent = 'ix_md_ticks_symbol_ts'::regclass"
            ).fetchone()
            assert indexed == (len(partitions(conn, "md_ticks")),)


@pytest.mark.e2e
def test_the_flusher_process_maintains_partitions_at_start(fresh: Settings, tmp_path: Path) -> None:
    stack = Stack(fresh, tmp_path)
    last = datetime.now(UTC).date() + timedelta(days=4)
    stack.start("flusher", PARTITIONS_AHEAD_DAYS="4")

    def missing() -> list[str]:
        return [day_name(t, last) for t in TABLES if day_name(t, last) not in names(fresh, t)]

    try:
        deadline = time.monotonic() + 30
        while missing() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert missing() == [], stack.logs()
    finally:
        assert stack.stop("flusher") == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RETENTION_DAYS", 0, "RETENTION_DAYS must be at least 1, got 0"),
        ("PARTITIONS_AHEAD_DAYS", -1, "PARTITIONS_AHEAD_DAYS must be 0 or more, got -1"),
        ("RETENTION_EVERY_S", -5, "RETENTION_EVERY_S must be 0 (off) or more, got -5.0"),
    ],
)
def test_retention_settings_out_of_range_are_refused_naming_the_variable(name: str, value: int, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings(**{name: value})  # type: ignore[arg-type]
