"""md_candles (closed and open candles, merged by the flusher) and md_dead_letters (poison rows).

Revision ID: 0004
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "md_candles",
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("interval", sa.Text, primary_key=True),
        sa.Column("bucket_start", TIMESTAMP, primary_key=True),
        sa.Column("open", sa.Double, nullable=False),
        sa.Column("open_ts", TIMESTAMP, nullable=False),
        sa.Column("open_event_id", sa.Text(collation="C"), nullable=False),
        sa.Column("high", sa.Double, nullable=False),
        sa.Column("low", sa.Double, nullable=False),
        sa.Column("close", sa.Double, nullable=False),
        sa.Column("close_ts", TIMESTAMP, nullable=False),
        sa.Column("close_event_id", sa.Text(collation="C"), nullable=False),
        sa.Column("volume", sa.Double, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_md_candles_bucket_start", "md_candles", ["bucket_start"])
    op.create_table(
        "md_dead_letters",
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("event_key", sa.Text, primary_key=True),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("failed_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_md_dead_letters_failed_at", "md_dead_letters", ["failed_at"])


def downgrade() -> None:
    op.drop_table("md_dead_letters")
    op.drop_table("md_candles")
