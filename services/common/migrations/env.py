"""Alembic environment: runs migrations against `sqlalchemy.url` (set by `db.migrate`)."""

from alembic import context
from sqlalchemy import create_engine, pool

from services.common.db import metadata

config = context.config


def run() -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()


run()
