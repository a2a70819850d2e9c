"""Platform tables every service has: event outbox, event inbox, audit log, job runs.

Revision ID: platform_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "platform_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("relayed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_event_outbox_unrelayed", "event_outbox", ["relayed_at", "seq"])
    op.create_table(
        "event_inbox",
        sa.Column("consumer_group", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(20), nullable=False),
        sa.Column("tenant_id", sa.String(100), nullable=False, index=True),
        sa.Column("service", sa.String(50), nullable=False),
        sa.Column("method", sa.String(200), nullable=False),
        sa.Column("resource", sa.String(300), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("outcome_message", sa.Text, nullable=False),
    )
    op.create_table(
        "job_runs",
        sa.Column("job_key", sa.String(200), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    for table in ("job_runs", "audit_entries", "event_inbox", "event_outbox"):
        op.drop_table(table)
