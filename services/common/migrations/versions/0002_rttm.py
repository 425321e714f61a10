"""RTTM tables: trade events, queue metrics, DLQ, errors, parsed logs, alerts.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def _create(name: str, *columns: sa.Column, indexes: tuple[tuple[str, ...], ...] = ()) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_key", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text),
        *columns,
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("inserted_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("event_key", name=f"uq_{name}_event_key"),
    )
    for cols in indexes:
        op.create_index(f"ix_{name}_{'_'.join(cols)}", name, list(cols))


def upgrade() -> None:
    _create(
        "rttm_trade_events",
        sa.Column("trade_id", sa.Text, nullable=False),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("event_status", sa.Text, nullable=False),
        sa.Column("source_queue", sa.Text),
        sa.Column("target_queue", sa.Text),
        sa.Column("topic_name", sa.Text),
        sa.Column("partition", sa.Integer),
        sa.Column("offset", sa.BigInteger),
        sa.Column("event_time", TIMESTAMP, nullable=False),
        sa.Column("message", sa.Text),
        indexes=(("trade_id", "event_time"), ("event_time",)),
    )
    _create(
        "rttm_queue_metrics",
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("topic_name", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("produced_offset", sa.BigInteger, nullable=False),
        sa.Column("consumed_offset", sa.BigInteger, nullable=False),
        sa.Column("snapshot_time", TIMESTAMP, nullable=False),
        indexes=(("topic_name", "partition", "snapshot_time"),),
    )
    _create(
        "rttm_dlq_events",
        sa.Column("trade_id", sa.Text, nullable=False),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("topic_name", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("event_time", TIMESTAMP, nullable=False),
        indexes=(("event_time",), ("trade_id",)),
    )
    _create(
        "rttm_error_events",
        sa.Column("trade_id", sa.Text),
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("error_type", sa.Text, nullable=False),
        sa.Column("error_message", sa.Text, nullable=False),
        sa.Column("event_time", TIMESTAMP, nullable=False),
        indexes=(("event_time",), ("service_name", "event_time")),
    )
    _create(
        "rttm_parsed_logs",
        sa.Column("service_name", sa.Text, nullable=False),
        sa.Column("log_level", sa.Text, nullable=False),
        sa.Column("log_category", sa.Text, nullable=False),
        sa.Column("trade_id", sa.Text),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("event_time", TIMESTAMP, nullable=False),
        indexes=(("event_time",), ("trade_id",)),
    )
    _create(
        "rttm_alerts",
        sa.Column("alert_id", sa.Text, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("threshold", sa.Double, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("event_time", TIMESTAMP, nullable=False),
        indexes=(("alert_id",), ("event_time",)),
    )


def downgrade() -> None:
    for name in (
        "rttm_alerts",
        "rttm_parsed_logs",
        "rttm_error_events",
        "rttm_dlq_events",
        "rttm_queue_metrics",
        "rttm_trade_events",
    ):
        op.drop_table(name)
