"""Dedup around incidents: the state each alert says about its incident, and the state last told per incident.

Revision ID: notifier_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0004"
down_revision = "notifier_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("state", sa.String(64), nullable=False, server_default=""))
    with op.batch_alter_table("dedup_states") as batch:
        batch.add_column(sa.Column("state", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("state_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dedup_states") as batch:
        batch.drop_column("state_at")
        batch.drop_column("state")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("state")
