"""Tenants' sending and tracking domains and the believed verdict of each of their checks.

Revision ID: reputation_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "reputation_0003"
down_revision = "reputation_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_domains",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("sending_domains", sa.Text, nullable=False),
        sa.Column("tracking_domains", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "domain_check_state",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column("check_kind", sa.String(16), primary_key=True),
        sa.Column("subject", sa.String(253), primary_key=True),
        sa.Column("domain_role", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("result", sa.LargeBinary, nullable=False),
        sa.Column("verdict_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unknown_reason", sa.Text, nullable=False),
        sa.Column("unknown_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("domain_check_state")
    op.drop_table("tenant_domains")
