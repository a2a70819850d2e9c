"""The ip-pool database tables (created by adapters/migrations)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("time_zone", sa.String(64), nullable=False),
    sa.Column("sending_window_start_hour", sa.Integer, nullable=False),
    sa.Column("sending_window_end_hour", sa.Integer, nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
)

ips = sa.Table(
    "ips",
    metadata,
    sa.Column("address", sa.String(45), primary_key=True),
    sa.Column("tenant_id", sa.String(63), sa.ForeignKey("tenants.tenant_id"), nullable=False),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("pool", sa.String(100), nullable=False),
    sa.Column("pmta_node", sa.String(200), nullable=False),
    sa.Column("helo_hostname", sa.String(253), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("state_reason", sa.Text, nullable=False),
    sa.Column("schedule_id", sa.String(100), nullable=False),
    sa.Column("step_index", sa.Integer, nullable=False),
    sa.Column("step_sending_days", sa.Integer, nullable=False),
    sa.Column("sending_day", sa.Integer, nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
)
