"""Tenants and IPs.

Revision ID: ippool_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "ippool_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("sending_window_start_hour", sa.Integer, nullable=False),
        sa.Column("sending_window_end_hour", sa.Integer, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ips",
        sa.Column("address", sa.String(45), primary_key=True),
        sa.Column("tenant_id", sa.String(63), sa.ForeignKey("tenants.tenant_id"), nullable=False, index=True),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("pool", sa.String(100), nullable=False),
        sa.Column("pmta_node", sa.String(200), nullable=False),
        sa.Column("helo_hostname", sa.String(253), nullable=False),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("state_reason", sa.Text, nullable=False),
        sa.Column("schedule_id", sa.String(100), nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("step_sending_days", sa.Integer, nullable=False),
        sa.Column("sending_day", sa.Integer, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ips")
    op.drop_table("tenants")
