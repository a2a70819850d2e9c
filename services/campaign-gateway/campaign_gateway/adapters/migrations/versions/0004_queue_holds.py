"""The queues this service paused on each PowerMTA node, so that every deploy can put them right again when a
pause or a resume was lost (a worker or Redis killed between the IP's change and the queue command).

Revision ID: campaign_0004_queue_holds
Revises: campaign_0003_pmta
"""

import sqlalchemy as sa
from alembic import op

revision = "campaign_0004_queue_holds"
down_revision = "campaign_0003_pmta"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pmta_queue_holds",
        sa.Column("node", sa.String(63), primary_key=True),
        sa.Column("vmta", sa.String(100), primary_key=True),
        sa.Column("address", sa.String(45), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pmta_queue_holds")
