"""When a dead letter was replayed successfully (kept for the record, hidden from the default list).

Revision ID: platform_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "platform_0003"
down_revision = "platform_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_dead_letters") as batch:
        batch.add_column(sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("event_dead_letters") as batch:
        batch.drop_column("replayed_at")
