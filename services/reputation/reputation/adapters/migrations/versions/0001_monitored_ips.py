"""IPs under watch and their scan results.

Revision ID: reputation_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "reputation_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitored_ips",
        sa.Column("address", sa.String(45), primary_key=True),
        sa.Column("tenant_id", sa.String(63), nullable=False, index=True),
        sa.Column("helo_hostname", sa.String(253), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_table(
        "scan_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(45), nullable=False, index=True),
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("scan_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("listed", sa.Boolean, nullable=False),
        sa.Column("result", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scan_results")
    op.drop_table("monitored_ips")
