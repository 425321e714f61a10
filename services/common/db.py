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

TICK_COLUMNS = ("event_id", "symbol", "price", "volume", "source", "ts", "received_at")


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
