"""Warmup: tenant policies, schedules, IP position and standby bookkeeping, decisions history, delivery stats,
listings, allocations.

Revision ID: ippool_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "ippool_0002"
down_revision = "ippool_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("update_time", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("default_schedule_id", sa.String(63), nullable=False, server_default="default"))
        batch.add_column(sa.Column("health", sa.JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("provider_shares", sa.JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("rotation", sa.JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("allocation_seq", sa.Integer, nullable=False, server_default="0"))

    with op.batch_alter_table("ips") as batch:
        batch.add_column(sa.Column("sending_day_in_step", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("last_sending_day", sa.Date, nullable=True))
        batch.add_column(sa.Column("decided_day", sa.Date, nullable=True))
        batch.add_column(sa.Column("resting_until", sa.Date, nullable=True))
        batch.add_column(sa.Column("standby_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("delisted_at", sa.DateTime(timezone=True), nullable=True))
    # Rows of the first version: `step_sending_days` counted days done, the new counter is the day the IP is on.
    ips = sa.table(
        "ips",
        sa.column("address", sa.String),
        sa.column("step_sending_days", sa.Integer),
        sa.column("sending_day_in_step", sa.Integer),
        sa.column("decided_day", sa.Date),
        sa.column("create_time", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(ips.c.address, ips.c.step_sending_days, ips.c.create_time)).all():
        bind.execute(
            ips.update()
            .where(ips.c.address == row.address)
            .values(sending_day_in_step=row.step_sending_days + 1, decided_day=row.create_time.date())
        )
    with op.batch_alter_table("ips") as batch:
        batch.drop_column("step_sending_days")
        batch.alter_column("decided_day", existing_type=sa.Date, nullable=False)
        batch.create_index("ix_ips_tenant_state", ["tenant_id", "state"])

    op.create_table(
        "schedules",
        sa.Column("tenant_id", sa.String(63), sa.ForeignKey("tenants.tenant_id"), primary_key=True),
        sa.Column("schedule_id", sa.String(63), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ip_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(45), sa.ForeignKey("ips.address"), nullable=False),
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("warmup_day", sa.Date, nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("figures", sa.JSON, nullable=True),
        sa.Column("notes", sa.JSON, nullable=False),
        sa.Column("state_before", sa.String(20), nullable=False),
        sa.Column("state_after", sa.String(20), nullable=False),
        sa.Column("step_index_before", sa.Integer, nullable=False),
        sa.Column("step_index_after", sa.Integer, nullable=False),
        sa.Column("quota_before", sa.Integer, nullable=False),
        sa.Column("quota_after", sa.Integer, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.UniqueConstraint("address", "warmup_day", name="uq_ip_decisions_warmup_day"),
    )
    op.create_index("ix_ip_decisions_address_id", "ip_decisions", ["address", "id"])
    op.create_table(
        "delivery_stats",
        sa.Column("address", sa.String(45), sa.ForeignKey("ips.address"), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("sent", sa.Integer, nullable=False),
        sa.Column("delivered", sa.Integer, nullable=False),
        sa.Column("bounced", sa.Integer, nullable=False),
        sa.Column("complained", sa.Integer, nullable=False),
        sa.Column("throttled", sa.Integer, nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_delivery_stats_tenant_day", "delivery_stats", ["tenant_id", "day"])
    op.create_table(
        "ip_listings",
        sa.Column("address", sa.String(45), sa.ForeignKey("ips.address"), primary_key=True),
        sa.Column("zone", sa.String(253), primary_key=True),
        sa.Column("listed_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "allocations",
        sa.Column("allocation_id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(63), sa.ForeignKey("tenants.tenant_id"), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("requested", sa.Integer, nullable=False),
        sa.Column("allocated_today", sa.Integer, nullable=False),
        sa.Column("remainder", sa.Integer, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    op.create_index("ix_allocations_tenant_day", "allocations", ["tenant_id", "day"])
    op.create_table(
        "allocation_lines",
        sa.Column("allocation_id", sa.String(32), sa.ForeignKey("allocations.allocation_id"), primary_key=True),
        sa.Column("address", sa.String(45), primary_key=True),
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("volume", sa.Integer, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
    )
    op.create_index("ix_allocation_lines_day_address", "allocation_lines", ["day", "address"])
    op.create_table(
        "tenant_day_runs",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("tenant_day_runs", "allocation_lines", "allocations", "ip_listings", "delivery_stats"):
        op.drop_table(table)
    op.drop_table("ip_decisions")
    op.drop_table("schedules")
    with op.batch_alter_table("ips") as batch:
        batch.drop_index("ix_ips_tenant_state")
        batch.add_column(sa.Column("step_sending_days", sa.Integer, nullable=False, server_default="0"))
        for column in (
            "sending_day_in_step",
            "last_sending_day",
            "decided_day",
            "resting_until",
            "standby_since",
            "delisted_at",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("tenants") as batch:
        for column in ("update_time", "default_schedule_id", "health", "provider_shares", "rotation", "allocation_seq"):
            batch.drop_column(column)
