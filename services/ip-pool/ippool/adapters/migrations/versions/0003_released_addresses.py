"""Released addresses: when an admin freed an IP's address for any tenant to register again.

Revision ID: ippool_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "ippool_0003"
down_revision = "ippool_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ips") as batch:
        batch.add_column(sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ips") as batch:
        batch.drop_column("released_at")
