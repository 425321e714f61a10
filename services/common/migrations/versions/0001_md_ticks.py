"""md_ticks: one row per accepted tick, unique by event_id.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "md_ticks",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("price", sa.Double, nullable=False),
        sa.Column("volume", sa.Double, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inserted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("event_id", name="uq_md_ticks_event_id"),
    )
    op.create_index("ix_md_ticks_symbol_ts", "md_ticks", ["symbol", "ts"])


def downgrade() -> None:
    op.drop_table("md_ticks")
