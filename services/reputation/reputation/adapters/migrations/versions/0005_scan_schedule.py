"""Periodic scans spread over each tenant's interval: each IP's next moment (NULL: at the next tick, as for an IP
from before this revision), and a tenant's own scan interval.

Revision ID: reputation_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "reputation_0005"
down_revision = "reputation_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monitored_ips") as batch:
        batch.add_column(sa.Column("next_scan_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "tenant_scan_settings",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("scan_interval_seconds", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tenant_scan_settings")
    with op.batch_alter_table("monitored_ips") as batch:
        batch.drop_column("next_scan_at")
