"""Where a relayed event is held until every consumer group has read it: the Redis server (its run id) and the
stream position, so that what a restarted or replaced Redis lost can be sent again.

Revision ID: platform_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "platform_0004"
down_revision = "platform_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_outbox") as batch:
        batch.add_column(sa.Column("relayed_to", sa.String(64), nullable=True))
        batch.add_column(sa.Column("stream_position", sa.String(40), nullable=True))
    # Few rows are held at a time: the relay finds them by this index, never by scanning the outbox.
    op.create_index(
        "ix_event_outbox_held",
        "event_outbox",
        ["relayed_to", "stream_position"],
        postgresql_where=sa.text("relayed_to IS NOT NULL"),
        sqlite_where=sa.text("relayed_to IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_event_outbox_held", table_name="event_outbox")
    with op.batch_alter_table("event_outbox") as batch:
        batch.drop_column("stream_position")
        batch.drop_column("relayed_to")
