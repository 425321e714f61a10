"""md_ticks and the RTTM tables become range-partitioned by day on their event time.

Each table is converted in place: the old table is renamed, a partitioned one
takes its name (same columns, defaults and id sequence), gets a DEFAULT
partition and one partition per UTC day that holds rows (the most recent
MAX_DAYS of them) plus today .. today + AHEAD_DAYS, the rows move over, the old
table is dropped and the constraints and indexes are built on the new one.
Postgres wants the partition key in a partitioned table's unique constraints,
so the primary key becomes (id, <time>) and the idempotency key (event_id, ts)
or (event_key, <time>). Rows outside the daily partitions land in the default
one, which the flusher's partition maintenance empties past RETENTION_DAYS.

The table definitions are frozen here as 0002 left them; later schema changes
belong in later migrations.

Revision ID: 0003
Revises: 0002
"""

from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MAX_DAYS = 90  # daily partitions made for existing rows; older rows go to the default partition
AHEAD_DAYS = 2  # partitions made ahead of today; the flusher's maintenance keeps them coming

# table: (partition key, idempotency key, indexes as 0001/0002 created them)
TABLES: dict[str, tuple[str, str, tuple[tuple[str, ...], ...]]] = {
    "md_ticks": ("ts", "event_id", (("symbol", "ts"),)),
    "rttm_trade_events": ("event_time", "event_key", (("trade_id", "event_time"), ("event_time",))),
    "rttm_queue_metrics": ("snapshot_time", "event_key", (("topic_name", "partition", "snapshot_time"),)),
    "rttm_dlq_events": ("event_time", "event_key", (("event_time",), ("trade_id",))),
    "rttm_error_events": ("event_time", "event_key", (("event_time",), ("service_name", "event_time"))),
    "rttm_parsed_logs": ("event_time", "event_key", (("event_time",), ("trade_id",))),
    "rttm_alerts": ("event_time", "event_key", (("alert_id",), ("event_time",))),
}


def _cols(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _scalar(sql: str) -> object:
    return op.get_bind().execute(sa.text(sql)).scalar_one()


def _drop_keys_and_indexes(table: str, constraints: tuple[str, ...], indexes: tuple[tuple[str, ...], ...]) -> None:
    """Free the names of the table's constraints and indexes (they are schema-wide) for the new table."""
    op.execute(f"ALTER TABLE {table} " + ", ".join(f"DROP CONSTRAINT {c}" for c in constraints))
    for columns in indexes:
        op.execute(f"DROP INDEX ix_{table.removesuffix('_old')}_{'_'.join(columns)}")


def _replace(table: str, old: str, partition_by: str | None) -> None:
    """`table` takes over `old`'s columns, defaults and id sequence (partitioned by `partition_by`, or plain)."""
    sequence = _scalar(f"SELECT pg_get_serial_sequence('{old}', 'id')")
    suffix = f" PARTITION BY RANGE ({partition_by})" if partition_by else ""
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS){suffix}")
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.id")  # or DROP TABLE old would drop it


def _days(table: str, key: str) -> list[date]:
    """UTC days that hold rows (the most recent MAX_DAYS), plus today .. today + AHEAD_DAYS."""
    rows = op.get_bind().execute(
        sa.text(f"SELECT DISTINCT (\"{key}\" AT TIME ZONE 'UTC')::date AS day FROM {table} ORDER BY day DESC LIMIT :n"),
        {"n": MAX_DAYS},
    )
    today = _scalar("SELECT (now() AT TIME ZONE 'UTC')::date")
    assert isinstance(today, date)
    return sorted({day for (day,) in rows} | {today + timedelta(days=i) for i in range(AHEAD_DAYS + 1)})


def _build_keys_and_indexes(table: str, unique: tuple[str, ...], indexes: tuple[tuple[str, ...], ...]) -> None:
    """Primary key (id, *partition key), the idempotency key `unique`, then the other indexes."""
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({_cols(('id', *unique[1:]))})")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT uq_{table}_{'_'.join(unique)} UNIQUE ({_cols(unique)})")
    for columns in indexes:
        op.execute(f"CREATE INDEX ix_{table}_{'_'.join(columns)} ON {table} ({_cols(columns)})")


def upgrade() -> None:
    for table, (key, unique, indexes) in TABLES.items():
        old = f"{table}_old"
        op.execute(f"ALTER TABLE {table} RENAME TO {old}")
        _drop_keys_and_indexes(old, (f"{table}_pkey", f"uq_{table}_{unique}"), indexes)
        _replace(table, old, partition_by=f'"{key}"')
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
        for day in _days(old, key):
            op.execute(
                f"CREATE TABLE {table}_p{day:%Y%m%d} PARTITION OF {table} "
                f"FOR VALUES FROM ('{day} 00:00:00+00') TO ('{day + timedelta(days=1)} 00:00:00+00')"
            )
        op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
        op.execute(f"DROP TABLE {old}")
        _build_keys_and_indexes(table, (unique, key), indexes)


def downgrade() -> None:
    """Back to plain tables; an idempotency key stored twice (with two times) keeps its first row."""
    for table, (key, unique, indexes) in TABLES.items():
        old = f"{table}_old"
        op.execute(f"ALTER TABLE {table} RENAME TO {old}")
        _drop_keys_and_indexes(old, (f"{table}_pkey", f"uq_{table}_{unique}_{key}"), indexes)
        _replace(table, old, partition_by=None)
        op.execute(f"INSERT INTO {table} SELECT DISTINCT ON ({unique}) * FROM {old} ORDER BY {unique}, id")
        op.execute(f"DROP TABLE {old}")  # and its partitions
        _build_keys_and_indexes(table, (unique,), indexes)
