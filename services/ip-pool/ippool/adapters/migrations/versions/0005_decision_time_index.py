"""An index on the time of decisions, so the metrics can count the last day's decisions without reading them all.

Revision ID: ippool_0005
"""

from alembic import op

revision = "ippool_0005"
down_revision = "ippool_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ip_decisions_time", "ip_decisions", ["time"])


def downgrade() -> None:
    op.drop_index("ix_ip_decisions_time", table_name="ip_decisions")
