"""The campaign-gateway database tables (created by adapters/migrations)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("campaign_id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("template_id", sa.String(200), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("state_reason", sa.Text, nullable=False),
    sa.Column("contact_count", sa.Integer, nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
)

campaign_contacts = sa.Table(
    "campaign_contacts",
    metadata,
    sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.campaign_id"), primary_key=True),
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("first_name", sa.String(200), nullable=False),
    sa.Column("last_name", sa.String(200), nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),
)
