"""A tenant's check policy beside its domains (the Return-Path domain of a sending domain lives in its JSON entry).

Revision ID: reputation_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "reputation_0004"
down_revision = "reputation_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenant_domains") as batch:
        batch.add_column(sa.Column("check_policy", sa.Text, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("tenant_domains") as batch:
        batch.drop_column("check_policy")
