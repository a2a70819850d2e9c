"""Campaigns created in MailWizz step by step (request id, stage, plan, MailWizz ids), their contact problems and
steps, the tenants' suppression lists, and the last MailWizz quota sync of each tenant.

Revision ID: campaign_0002_mailwizz
"""

import sqlalchemy as sa
from alembic import op

revision = "campaign_0002_mailwizz"
down_revision = "campaign_0001"
branch_labels = None
depends_on = None

_CAMPAIGN_COLUMNS = (
    ("request_id", sa.String(100), {"nullable": True}),
    ("fingerprint", sa.String(64), {"nullable": True}),
    ("stage", sa.String(20), {"nullable": True}),
    ("subject", sa.String(255), {"nullable": False, "server_default": ""}),
    ("from_name", sa.String(100), {"nullable": False, "server_default": ""}),
    ("from_email", sa.String(100), {"nullable": False, "server_default": ""}),
    ("reply_to", sa.String(100), {"nullable": False, "server_default": ""}),
    ("send_time", sa.DateTime(timezone=True), {"nullable": True}),
    ("received", sa.Integer(), {"nullable": False, "server_default": "0"}),
    ("preflight", sa.JSON(), {"nullable": True}),
    ("send_plan", sa.JSON(), {"nullable": True}),
    ("mailwizz_list_uid", sa.String(40), {"nullable": False, "server_default": ""}),
    ("mailwizz_campaign_uid", sa.String(40), {"nullable": False, "server_default": ""}),
    ("mailwizz_template_uid", sa.String(40), {"nullable": False, "server_default": ""}),
    ("mailwizz_status", sa.String(20), {"nullable": False, "server_default": ""}),
    ("subscribers_added", sa.Integer(), {"nullable": False, "server_default": "0"}),
    ("subscribers_already_present", sa.Integer(), {"nullable": False, "server_default": "0"}),
    ("chunk_size", sa.Integer(), {"nullable": False, "server_default": "0"}),
    ("update_time", sa.DateTime(timezone=True), {"nullable": True}),
    ("lease_owner", sa.String(64), {"nullable": True}),
    ("lease_until", sa.DateTime(timezone=True), {"nullable": True}),
)


def upgrade() -> None:
    # Columns are added in place and the uniqueness is an index: SQLite would otherwise copy `campaigns`, which
    # its foreign keys (campaign_contacts) forbid. Campaigns stored before were never handed to MailWizz: they
    # keep their state, and what they received is what they were accepted with.
    for name, kind, options in _CAMPAIGN_COLUMNS:
        op.add_column("campaigns", sa.Column(name, kind, **options))
    op.execute("UPDATE campaigns SET received = contact_count")
    op.create_index("uq_campaigns_tenant_request", "campaigns", ["tenant", "request_id"], unique=True)
    op.create_index("ix_campaigns_state", "campaigns", ["state"])
    op.add_column("campaign_contacts", sa.Column("position", sa.Integer(), nullable=True))
    op.create_table(
        "campaign_problems",
        sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.campaign_id"), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_table(
        "campaign_steps",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.campaign_id"), nullable=False, index=True),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "suppressions",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("address_key", sa.String(320), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("source", sa.String(63), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "mailwizz_sync_state",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("last_sync_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", sa.Text(), nullable=False),
        sa.Column("conflicts", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mailwizz_sync_state")
    op.drop_table("suppressions")
    op.drop_table("campaign_steps")
    op.drop_table("campaign_problems")
    op.drop_column("campaign_contacts", "position")
    op.drop_index("ix_campaigns_state", table_name="campaigns")
    op.drop_index("uq_campaigns_tenant_request", table_name="campaigns")
    for name, _, _ in reversed(_CAMPAIGN_COLUMNS):
        op.drop_column("campaigns", name)
