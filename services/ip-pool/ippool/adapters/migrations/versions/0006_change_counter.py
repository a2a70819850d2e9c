"""The count of committed writes: one row every writing unit of work bumps, by which cached reads stay exact.

Revision ID: ippool_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "ippool_0006"
down_revision = "ippool_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "ippool_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("ippool_changes")
