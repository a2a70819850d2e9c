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
    # Added by 0002_mailwizz: the creation in MailWizz, step by step.
    sa.Column("request_id", sa.String(100), nullable=True),
    sa.Column("fingerprint", sa.String(64), nullable=True),
    sa.Column("stage", sa.String(20), nullable=True),
    sa.Column("subject", sa.String(255), nullable=False, server_default=""),
    sa.Column("from_name", sa.String(100), nullable=False, server_default=""),
    sa.Column("from_email", sa.String(100), nullable=False, server_default=""),
    sa.Column("reply_to", sa.String(100), nullable=False, server_default=""),
    sa.Column("send_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("received", sa.Integer, nullable=False, server_default="0"),
    sa.Column("preflight", sa.JSON, nullable=True),
    sa.Column("send_plan", sa.JSON, nullable=True),
    sa.Column("mailwizz_list_uid", sa.String(40), nullable=False, server_default=""),
    sa.Column("mailwizz_campaign_uid", sa.String(40), nullable=False, server_default=""),
    sa.Column("mailwizz_template_uid", sa.String(40), nullable=False, server_default=""),
    sa.Column("mailwizz_status", sa.String(20), nullable=False, server_default=""),
    sa.Column("subscribers_added", sa.Integer, nullable=False, server_default="0"),
    sa.Column("subscribers_already_present", sa.Integer, nullable=False, server_default="0"),
    sa.Column("chunk_size", sa.Integer, nullable=False, server_default="0"),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Index("uq_campaigns_tenant_request", "tenant", "request_id", unique=True),
)

campaign_contacts = sa.Table(
    "campaign_contacts",
    metadata,
    sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.campaign_id"), primary_key=True),
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("first_name", sa.String(200), nullable=False),
    sa.Column("last_name", sa.String(200), nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("position", sa.Integer, nullable=True),  # in the request (0002_mailwizz)
)

# --- 0002_mailwizz ---------------------------------------------------------------------------------------------

campaign_problems = sa.Table(
    "campaign_problems",
    metadata,
    sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.campaign_id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

campaign_steps = sa.Table(
    "campaign_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.campaign_id"), nullable=False, index=True),
    sa.Column("step", sa.String(40), nullable=False),
    sa.Column("outcome", sa.String(10), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("address_key", sa.String(320), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("source", sa.String(63), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
)

mailwizz_sync_state = sa.Table(
    "mailwizz_sync_state",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("last_sync_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_outcome", sa.Text, nullable=False),
    sa.Column("conflicts", sa.JSON, nullable=False),
)
