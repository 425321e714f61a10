"""Daily partitions of the event tables: made ahead of time, dropped whole after RETENTION_DAYS.

Every table of `db.PARTITIONED` (md_ticks on `ts`, the rttm_* tables on their
event or snapshot time) has one partition per UTC day, `<table>_pYYYYMMDD`,
plus `<table>_default`, which takes any row outside them so an insert never
fails. `maintain` (each flusher runs it at start and every RETENTION_EVERY_S,
see retention.py), per table:

- creates the missing partitions of today .. today + PARTITIONS_AHEAD_DAYS; rows
  of such a day already in the default partition move into the new one in the
  same transaction (Postgres refuses the partition otherwise);
- drops each daily partition whose upper bound is at or before
  now - RETENTION_DAYS (all of its rows are past retention): a catalog
  operation, no DELETE, no vacuum debt;
- deletes the default partition's rows older than now - RETENTION_DAYS.

One flusher at a time does it: a session advisory lock, tried and not waited
for (another flusher holding it is doing the work). Each step is its own
transaction and can be rerun; DDL waits at most LOCK_TIMEOUT_MS for the
flusher's and readers' transactions, and a step that failed is retried after
RETRY_S.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from services.common.db import PARTITIONED, partition_key
from services.common.logging import get_logger
from services.flusher import metrics
from services.flusher.defaults import LOCK_TIMEOUT_MS

log = get_logger(__name__)

LOCK_KEY = 0x6D64_7061_7274  # pg_try_advisory_lock key ("mdpart"); advisory locks are per database
BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    name: str
    lower: datetime | None  # None for the default partition (and bounds other than FROM (time) TO (time))
    upper: datetime | None
    default: bool = False


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    moved_from_default: int = 0  # rows moved into a partition made for their day
    deleted_from_default: int = 0  # rows past retention deleted from the default partitions
    failed: list[str] = field(default_factory=list)  # steps that did not complete: "<step> <relation>: <error>"


def day_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def partitions(conn: psycopg.Connection, table: str) -> list[Partition]:
    """The partitions of `table` with their bounds, read from the catalog."""
    with conn.transaction():
        conn.execute("SET LOCAL TimeZone = 'UTC'")  # bounds render as '2026-01-01 00:00:00+00'
        rows = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            (table,),
        ).fetchall()
    out = []
    for name, bound in rows:
        match = BOUND.fullmatch(bound)
        if match is None:
            out.append(Partition(name, None, None, default=bound == "DEFAULT"))
        else:
            lower, upper = (datetime.fromisoformat(b) for b in match.groups())
            out.append(Partition(name, lower, upper))
    return out


def maintain(
    conn: psycopg.Connection, *, now: datetime | None = None, retention_days: int, ahead_days: int
) -> Report | None:
    """One maintenance run over every partitioned table; None when another session holds the lock.

    `conn` must be in autocommit mode: every step commits on its own.
    """
    if not conn.autocommit:
        raise ValueError("maintain needs an autocommit connection (each step is its own transaction)")
    now = now or datetime.now(UTC)
    if not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
        log.info("partitions.busy", reason="another flusher is maintaining partitions")
        return None
    report = Report()
    try:
        cutoff = now - timedelta(days=retention_days)
        today = now.astimezone(UTC).date()
        days = [today + timedelta(days=i) for i in range(ahead_days + 1)]
        for table in PARTITIONED:
            _maintain_table(conn, table.name, str(partition_key(table)), days, cutoff, report)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    log.info(
        "partitions.maintained",
        created=len(report.created),
        dropped=len(report.dropped),
        moved_from_default=report.moved_from_default,
        deleted_from_default=report.deleted_from_default,
        failed=len(report.failed),
        retention_days=retention_days,
        cutoff=cutoff.isoformat(),
    )
    return report


def _maintain_table(
    conn: psycopg.Connection, table: str, key: str, days: list[date], cutoff: datetime, report: Report
) -> None:
    existing = partitions(conn, table)
    default = next((p.name for p in existing if p.default), None)
    if default is None:  # made by the migration; recreated if someone dropped it
        default = f"{table}_default"
        if _step(conn, report, "create", default, _create_default, table, default) is not None:
            report.created.append(default)
    for day in days:
        lower, upper = day_start(day), day_start(day + timedelta(days=1))
        if any(p.lower is not None and p.upper is not None and p.lower < upper and lower < p.upper for p in existing):
            continue  # covered (by our partition of that day, or by one someone else made)
        moved = _step(conn, report, "create", day_name(table, day), _create_day, table, key, default, day)
        if moved is not None:
            report.created.append(day_name(table, day))
            report.moved_from_default += moved
            metrics.PARTITIONS_CREATED.labels(table).inc()
            log.info("partitions.created", table=table, partition=day_name(table, day), moved_from_default=moved)
    for p in existing:
        if p.upper is not None and p.upper <= cutoff:
            if _step(conn, report, "drop", p.name, _drop, p.name) is not None:
                report.dropped.append(p.name)
                metrics.PARTITIONS_DROPPED.labels(table).inc()
                log.info("partitions.dropped", table=table, partition=p.name, upper=p.upper.isoformat())
    deleted = _step(conn, report, "prune", default, _prune_default, default, key, cutoff)
    if deleted:
        report.deleted_from_default += deleted
        metrics.DEFAULT_ROWS_DELETED.labels(table).inc(deleted)
        log.info("partitions.default_pruned", table=table, partition=default, rows=deleted)


def _step(
    conn: psycopg.Connection, report: Report, what: str, relation: str, fn: Callable[..., int], *args: object
) -> int | None:
    """Run one step in its own transaction; a failure is logged, reported and left for the next run."""
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
            return fn(conn, *args)
    except psycopg.Error as exc:
        if conn.broken:  # Postgres gone: the whole run is retried
            raise
        error = str(exc).strip()
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            error = f"lock not granted within {LOCK_TIMEOUT_MS} ms"
    report.failed.append(f"{what} {relation}: {error}")
    log.error("partitions.step_failed", step=what, relation=relation, error=error)
    return None


def _create_default(conn: psycopg.Connection, table: str, default: str) -> int:
    query = sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} DEFAULT")
    conn.execute(query.format(sql.Identifier(default), sql.Identifier(table)))
    return 0


def _create_day(conn: psycopg.Connection, table: str, key: str, default: str, day: date) -> int:
    """The partition of `day`, with the default partition's rows of that day moved into it; returns how many."""
    lower, upper = sql.Literal(day_start(day)), sql.Literal(day_start(day + timedelta(days=1)))
    in_day = sql.SQL("{} >= {} AND {} < {}").format(sql.Identifier(key), lower, sql.Identifier(key), upper)
    # CREATE ... PARTITION OF locks the parent anyway; taking it first means no row of that day can
    # land in the default partition between the move and the CREATE (Postgres would refuse the partition).
    conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table)))
    moved = 0
    has_rows = conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(sql.Identifier(default), in_day)
    )
    if has_rows.fetchone()[0]:  # type: ignore[index]
        copy = sql.SQL("CREATE TEMP TABLE partition_move ON COMMIT DROP AS SELECT * FROM {} WHERE {}")
        conn.execute(copy.format(sql.Identifier(default), in_day))
        moved = conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(default), in_day)).rowcount
    create = sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})")
    conn.execute(create.format(sql.Identifier(day_name(table, day)), sql.Identifier(table), lower, upper))
    if moved:
        conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM partition_move").format(sql.Identifier(table)))
    return moved


def _drop(conn: psycopg.Connection, name: str) -> int:
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
    return 1


def _prune_default(conn: psycopg.Connection, default: str, key: str, cutoff: datetime) -> int:
    query = sql.SQL("DELETE FROM {} WHERE {} < {}").format(
        sql.Identifier(default), sql.Identifier(key), sql.Literal(cutoff)
    )
    return conn.execute(query).rowcount
