"""Listing state per IP, zone health, tenants' zone choices; last scan time per watched IP.

Revision ID: reputation_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "reputation_0002"
down_revision = "reputation_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monitored_ips") as batch:
        batch.add_column(sa.Column("last_scan_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_scan_results_address_time", "scan_results", ["address", "scan_time"])
    op.create_index("ix_scan_results_time", "scan_results", ["scan_time"])
    op.create_table(
        "ip_listings",
        sa.Column("address", sa.String(45), primary_key=True),
        sa.Column("tenant_id", sa.String(63), nullable=False, index=True),
        sa.Column("listings", sa.Text, nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "zone_health",
        sa.Column("zone_key", sa.String(63), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tenant_zones",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("ip_zones", sa.Text, nullable=False),
        sa.Column("domain_zones", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tenant_zones")
    op.drop_table("zone_health")
    op.drop_table("ip_listings")
    op.drop_index("ix_scan_results_time", "scan_results")
    op.drop_index("ix_scan_results_address_time", "scan_results")
    with op.batch_alter_table("monitored_ips") as batch:
        batch.drop_column("last_scan_at")
