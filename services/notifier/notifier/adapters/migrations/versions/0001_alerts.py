"""Alerts and their delivery state (the durable outbox of messages to people).

Revision ID: notifier_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(63), nullable=False, index=True),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("dedup_key", sa.String(300), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("delivery_state", sa.String(20), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("delivery_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alerts")
