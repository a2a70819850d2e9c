"""Deliverability judgement: listing severity and its action, held provider caps and the health window, all
deferrals beside reputation-class ones, tenant policies for listings, feedback loops and purposes, and decision
records that name the policy values they used.

Revision ID: ippool_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "ippool_0004"
down_revision = "ippool_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        for column in ("listings", "feedback_loops", "purposes"):
            batch.add_column(sa.Column(column, sa.JSON, nullable=False, server_default="{}"))
    with op.batch_alter_table("ips") as batch:
        batch.add_column(sa.Column("provider_holds", sa.JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("window_start", sa.Date, nullable=True))
    with op.batch_alter_table("ip_decisions") as batch:
        batch.add_column(sa.Column("policy", sa.JSON, nullable=True))
        batch.add_column(sa.Column("listing", sa.JSON, nullable=True))
    with op.batch_alter_table("delivery_stats") as batch:
        batch.add_column(sa.Column("deferred", sa.Integer, nullable=False, server_default="0"))
    # Listings seen before severities all put their IP in standby: they keep doing so until delisted.
    with op.batch_alter_table("ip_listings") as batch:
        batch.add_column(sa.Column("severity", sa.String(16), nullable=False, server_default="UNSPECIFIED"))
        batch.add_column(sa.Column("action", sa.String(16), nullable=False, server_default="STANDBY"))
        batch.add_column(sa.Column("policy_field", sa.String(32), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("ip_listings") as batch:
        for column in ("severity", "action", "policy_field"):
            batch.drop_column(column)
    with op.batch_alter_table("delivery_stats") as batch:
        batch.drop_column("deferred")
    with op.batch_alter_table("ip_decisions") as batch:
        batch.drop_column("policy")
        batch.drop_column("listing")
    with op.batch_alter_table("ips") as batch:
        batch.drop_column("provider_holds")
        batch.drop_column("window_start")
    with op.batch_alter_table("tenants") as batch:
        for column in ("listings", "feedback_loops", "purposes"):
            batch.drop_column(column)
