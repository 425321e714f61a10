"""Postgres tables (SQLAlchemy Core) and engine factories.

The schema itself is created by the Alembic migrations in `migrations/`;
these definitions are what queries are written against.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.common.settings import Settings

metadata = MetaData()

md_ticks = Table(
    "md_ticks",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("price", Double, nullable=False),
    Column("volume", Double, nullable=False),
    Column("source", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("inserted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("event_id", name="uq_md_ticks_event_id"),
    Index("ix_md_ticks_symbol_ts", "symbol", "ts"),
)


def _rttm_table(name: str, *columns: Column, indexes: tuple[tuple[str, ...], ...] = ()) -> Table:
    """An RTTM event table: its columns plus the idempotency key and the API/insert times."""
    return Table(
        name,
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_key", Text, nullable=False),
        Column("event_id", Text),
        *columns,
        Column("received_at", DateTime(timezone=True), nullable=False),
        Column("inserted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        UniqueConstraint("event_key", name=f"uq_{name}_event_key"),
        *(Index(f"ix_{name}_{'_'.join(cols)}", *cols) for cols in indexes),
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


def async_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(settings.pg_url, pool_size=5, max_overflow=5, pool_pre_ping=True)


def migrate(settings: Settings) -> None:
    """Apply every Alembic migration (`alembic upgrade head`)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", settings.pg_url.replace("%", "%%"))
    command.upgrade(config, "head")
