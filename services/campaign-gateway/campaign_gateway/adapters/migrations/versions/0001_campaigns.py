"""Campaigns.

Revision ID: campaign_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "campaign_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(63), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("template_id", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("state_reason", sa.Text, nullable=False),
        sa.Column("contact_count", sa.Integer, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "campaign_contacts",
        sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.campaign_id"), primary_key=True),
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("first_name", sa.String(200), nullable=False),
        sa.Column("last_name", sa.String(200), nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("campaign_contacts")
    op.drop_table("campaigns")
