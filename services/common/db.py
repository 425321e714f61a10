"""Postgres tables (SQLAlchemy Core) and engine factories.

The schema itself is created by the Alembic migrations in `migrations/`;
these definitions are what queries are written against.

The event tables are range-partitioned by day on their event time (`PARTITION_KEY`
in `Table.info`; partitions are managed by `flusher/partitions.py`).
Postgres wants the partition key in every unique constraint of a partitioned
table, so the idempotency key is unique together with it: `(event_id, ts)`,
`(event_key, event_time)`. The flusher's INSERT also skips a key already
present in any partition (see `flusher/writer.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.common.settings import Settings

metadata = MetaData()

PARTITION_KEY = "partition_key"  # Table.info entry: the column a table is range-partitioned by, per day


def _partitioned(column: str) -> dict[str, Any]:
    """Table keyword arguments of a table partitioned by day on `column`."""
    return {"info": {PARTITION_KEY: column}, "postgresql_partition_by": f"RANGE ({column})"}


md_ticks = Table(
    "md_ticks",
    metadata,
    Column("id", BigInteger, autoincrement=True),
    Column("event_id", Text, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("price", Double, nullable=False),
    Column("volume", Double, nullable=False),
    Column("source", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("inserted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("id", "ts", name="md_ticks_pkey"),
    UniqueConstraint("event_id", "ts", name="uq_md_ticks_event_id_ts"),
    Index("ix_md_ticks_symbol_ts", "symbol", "ts"),
    **_partitioned("ts"),
)


def _rttm_table(
    name: str, *columns: Column, time_column: str = "event_time", indexes: tuple[tuple[str, ...], ...] = ()
) -> Table:
    """An RTTM event table: its columns plus the idempotency key and the API/insert times."""
    return Table(
        name,
        metadata,
        Column("id", BigInteger, autoincrement=True),
        Column("event_key", Text, nullable=False),
        Column("event_id", Text),
        *columns,
        Column("received_at", DateTime(timezone=True), nullable=False),
        Column("inserted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("id", time_column, name=f"{name}_pkey"),
        UniqueConstraint("event_key", time_column, name=f"uq_{name}_event_key_{time_column}"),
        *(Index(f"ix_{name}_{'_'.join(cols)}", *cols) for cols in indexes),
        **_partitioned(time_column),
    )


rttm_trade_events = _rttm_table(
    "rttm_trade_events",
    Column("trade_id", Text, nullable=False),
    Column("service_name", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("event_status", Text, nullable=False),
    Column("source_queue", Text),
    Column("target_queue", Text),
    Column("topic_name", Text),
    Column("partition", Integer),
    Column("offset", BigInteger),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("message", Text),
    indexes=(("trade_id", "event_time"), ("event_time",)),
)
rttm_queue_metrics = _rttm_table(
    "rttm_queue_metrics",
    Column("service_name", Text, nullable=False),
    Column("topic_name", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("produced_offset", BigInteger, nullable=False),
    Column("consumed_offset", BigInteger, nullable=False),
    Column("snapshot_time", DateTime(timezone=True), nullable=False),
    time_column="snapshot_time",
    indexes=(("topic_name", "partition", "snapshot_time"),),
)
rttm_dlq_events = _rttm_table(
    "rttm_dlq_events",
    Column("trade_id", Text, nullable=False),
    Column("service_name", Text, nullable=False),
    Column("topic_name", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    indexes=(("event_time",), ("trade_id",)),
)
rttm_error_events = _rttm_table(
    "rttm_error_events",
    Column("trade_id", Text),
    Column("service_name", Text, nullable=False),
    Column("error_type", Text, nullable=False),
    Column("error_message", Text, nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    indexes=(("event_time",), ("service_name", "event_time")),
)
rttm_parsed_logs = _rttm_table(
    "rttm_parsed_logs",
    Column("service_name", Text, nullable=False),
    Column("log_level", Text, nullable=False),
    Column("log_category", Text, nullable=False),
    Column("trade_id", Text),
    Column("message", Text, nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    indexes=(("event_time",), ("trade_id",)),
)
# One row per alert transition (fired, resolved); event_key is "<alert_id>:<state>".
rttm_alerts = _rttm_table(
    "rttm_alerts",
    Column("alert_id", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("value", Double, nullable=False),
    Column("threshold", Double, nullable=False),
    Column("message", Text, nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    indexes=(("alert_id",), ("event_time",)),
)


PARTITIONED = tuple(t for t in metadata.sorted_tables if PARTITION_KEY in t.info)


def partition_key(table: Table) -> str | None:
    """The column `table` is partitioned by day on, or None for a plain table."""
    key = table.info.get(PARTITION_KEY)
    return str(key) if key is not None else None


def async_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(settings.pg_url, pool_size=5, max_overflow=5, pool_pre_ping=True)


def migrate(settings: Settings, revision: str = "head") -> None:
    """Apply the Alembic migrations up to `revision` (`alembic upgrade head` by default)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", settings.pg_url.replace("%", "%%"))
    command.upgrade(config, revision)


# --- candles and dead letters (migration 0004) ---------------------------------

# One row per symbol, interval and UTC-aligned bucket, merged by the flusher from the ticks each
# transaction newly inserted (candle_store.py); the open/close event ids compare bytewise, as calc-a does.
md_candles = Table(
    "md_candles",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("interval", Text, primary_key=True),
    Column("bucket_start", DateTime(timezone=True), primary_key=True),
    Column("open", Double, nullable=False),
    Column("open_ts", DateTime(timezone=True), nullable=False),
    Column("open_event_id", Text(collation="C"), nullable=False),
    Column("high", Double, nullable=False),
    Column("low", Double, nullable=False),
    Column("close", Double, nullable=False),
    Column("close_ts", DateTime(timezone=True), nullable=False),
    Column("close_event_id", Text(collation="C"), nullable=False),
    Column("volume", Double, nullable=False),
    Column("count", BigInteger, nullable=False),
    Index("ix_md_candles_bucket_start", "bucket_start"),  # retention deletes by age alone
)

# Rows the flusher could not write for a reason in the data itself (dead_letter.py). The record is
# JSON as text, not jsonb: jsonb refuses the very NUL characters that make some rows poison.
md_dead_letters = Table(
    "md_dead_letters",
    metadata,
    Column("kind", Text, primary_key=True),
    Column("event_key", Text, primary_key=True),
    Column("record", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_md_dead_letters_failed_at", "failed_at"),
)
