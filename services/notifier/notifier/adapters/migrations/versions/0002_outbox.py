"""The durable outbox: routes, one delivery per (alert, route), dispatches (one message each), dedup state.

Revision ID: notifier_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0002"
down_revision = "notifier_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("labels", sa.Text, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("resolved", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("url", sa.String(2048), nullable=False, server_default=""))
        batch.add_column(sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("suppressed_count", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("duplicate_of", sa.String(36), nullable=True))
    alerts = sa.table(
        "alerts",
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("create_time", sa.DateTime(timezone=True)),
        sa.column("delivery_state", sa.String(20)),
    )
    op.execute(alerts.update().where(alerts.c.occurred_at.is_(None)).values(occurred_at=alerts.c.create_time))
    # The first version stored alerts without routing them: no route ever took them.
    op.execute(alerts.update().where(alerts.c.delivery_state == "PENDING").values(delivery_state="UNROUTED"))

    op.create_table(
        "routes",
        sa.Column("route_id", sa.String(128), primary_key=True),
        # NULL: an admin route (every tenant and the platform).
        sa.Column("tenant_id", sa.String(63), nullable=True, index=True),
        sa.Column("channel", sa.String(10), nullable=False),
        # Chat id or webhook URL; `secret` is the webhook signing key. Never returned by the API.
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=True),
        sa.Column("min_severity", sa.Integer, nullable=False),
        sa.Column("quiet_start", sa.String(5), nullable=True),
        sa.Column("quiet_end", sa.String(5), nullable=True),
        sa.Column("quiet_time_zone", sa.String(64), nullable=True),
        sa.Column("quiet_mode", sa.String(10), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        # Delivery bookkeeping: per-chat spacing, a 429's pause, and the lease of the worker sending to it.
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "dedup_states",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("dedup_key", sa.String(300), primary_key=True),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("suppressed_count", sa.Integer, nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("alert_id", sa.String(36), nullable=False),
    )
    op.create_table(
        "dispatches",
        sa.Column("dispatch_id", sa.String(36), primary_key=True),
        sa.Column("route_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("digest", sa.Boolean, nullable=False),
        sa.Column("silent", sa.Boolean, nullable=False),
        sa.Column("parts_sent", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_dispatches_route_state", "route_id", "state"),
    )
    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.String(36), primary_key=True),
        sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.alert_id"), nullable=False, index=True),
        sa.Column("route_id", sa.String(128), nullable=False),
        sa.Column("route_tenant_id", sa.String(63), nullable=True),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("destination", sa.String(300), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deliver_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("silent", sa.Boolean, nullable=False),
        sa.Column("dispatch_id", sa.String(36), nullable=True, index=True),
        sa.Column("digest", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_deliveries_state_due", "state", "deliver_at"),
        sa.Index("ix_deliveries_route_state", "route_id", "state"),
        sa.Index("ix_deliveries_route_accepted", "route_id", "accepted_at"),
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("dispatches")
    op.drop_table("dedup_states")
    op.drop_table("routes")
    with op.batch_alter_table("alerts") as batch:
        for name in ("duplicate_of", "suppressed_count", "occurred_at", "url", "resolved", "labels"):
            batch.drop_column(name)
