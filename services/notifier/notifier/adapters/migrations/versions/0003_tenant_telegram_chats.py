"""The Telegram chats an admin allowed each tenant to use; the chats its routes already use are allowed.

Revision ID: notifier_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0003"
down_revision = "notifier_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_telegram_chats",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("chat_key", sa.String(64), primary_key=True),
        sa.Column("allowed_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Routes made before this rule keep working: their chats count as allowed for their tenants. Targets were
    # validated as chat ids when stored; usernames compare in lowercase.
    routes = sa.table(
        "routes",
        sa.column("tenant_id", sa.String(63)),
        sa.column("channel", sa.String(10)),
        sa.column("target", sa.Text),
        sa.column("create_time", sa.DateTime(timezone=True)),
    )
    chats = sa.table(
        "tenant_telegram_chats",
        sa.column("tenant_id", sa.String(63)),
        sa.column("chat_key", sa.String(64)),
        sa.column("allowed_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        chats.insert().from_select(
            ["tenant_id", "chat_key", "allowed_at"],
            sa.select(routes.c.tenant_id, sa.func.lower(routes.c.target), sa.func.min(routes.c.create_time))
            .where(routes.c.tenant_id.is_not(None), routes.c.channel == "telegram")
            .where(sa.func.length(routes.c.target) <= 64)
            .group_by(routes.c.tenant_id, sa.func.lower(routes.c.target)),
        )
    )


def downgrade() -> None:
    op.drop_table("tenant_telegram_chats")
