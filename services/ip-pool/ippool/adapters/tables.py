"""The ip-pool database tables (created by adapters/migrations; keep both in step)."""

from __future__ import annotations

import sqlalchemy as sa

from libs.change_counter import counter_table

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
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("default_schedule_id", sa.String(63), nullable=False, server_default="default"),
    # Full effective policies as JSON objects (field names as in ippool.domain); {} means all defaults.
    sa.Column("health", sa.JSON, nullable=False),
    sa.Column("provider_shares", sa.JSON, nullable=False),
    sa.Column("rotation", sa.JSON, nullable=False),
    sa.Column("listings", sa.JSON, nullable=False, server_default="{}"),
    sa.Column("feedback_loops", sa.JSON, nullable=False, server_default="{}"),
    sa.Column("purposes", sa.JSON, nullable=False, server_default="{}"),
    # Bumped by every reserving allocation: the row lock serialises a tenant's allocations.
    sa.Column("allocation_seq", sa.Integer, nullable=False, server_default="0"),
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
    sa.Column("sending_day_in_step", sa.Integer, nullable=False),
    sa.Column("sending_day", sa.Integer, nullable=False),
    sa.Column("last_sending_day", sa.Date, nullable=True),
    sa.Column("decided_day", sa.Date, nullable=False),
    sa.Column("resting_until", sa.Date, nullable=True),
    sa.Column("standby_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("delisted_at", sa.DateTime(timezone=True), nullable=True),
    # Set when an admin released the address: any tenant may register it again (the row is then reused).
    sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    # {"MICROSOFT": 60}: caps held below the provider's share because it throttled the IP.
    sa.Column("provider_holds", sa.JSON, nullable=False, server_default="{}"),
    # The first day the warmup decision's window may read: the IP's registration, last step back or restart.
    sa.Column("window_start", sa.Date, nullable=True),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
)

schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("tenant_id", sa.String(63), sa.ForeignKey("tenants.tenant_id"), primary_key=True),
    sa.Column("schedule_id", sa.String(63), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    # [{"daily_volume": 50, "sending_days": 7}, ..., {"daily_volume": 10000, "sending_days": null}]
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
)

ip_decisions = sa.Table(
    "ip_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("address", sa.String(45), sa.ForeignKey("ips.address"), nullable=False),
    sa.Column("tenant_id", sa.String(63), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    # Set on WARMUP decisions only: (address, warmup_day) is unique, so a day is decided once per IP.
    sa.Column("warmup_day", sa.Date, nullable=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("rule", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("figures", sa.JSON, nullable=True),
    sa.Column("notes", sa.JSON, nullable=False),
    # {"health.min_sample": "100", ...}: the tenant policy values the decision used.
    sa.Column("policy", sa.JSON, nullable=True),
    # Listing and delisting entries: {"zone", "severity", "action", "policy"}.
    sa.Column("listing", sa.JSON, nullable=True),
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

delivery_stats = sa.Table(
    "delivery_stats",
    metadata,
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
    sa.Column("deferred", sa.Integer, nullable=False, server_default="0"),
)

ip_listings = sa.Table(
    "ip_listings",
    metadata,
    sa.Column("address", sa.String(45), sa.ForeignKey("ips.address"), primary_key=True),
    sa.Column("zone", sa.String(253), primary_key=True),
    sa.Column("listed_since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    # The listing's severity and the action the tenant's policy gave it when it was seen (rows from before
    # severities caused a standby).
    sa.Column("severity", sa.String(16), nullable=False, server_default="UNSPECIFIED"),
    sa.Column("action", sa.String(16), nullable=False, server_default="STANDBY"),
    sa.Column("policy_field", sa.String(32), nullable=False, server_default=""),
)

allocations = sa.Table(
    "allocations",
    metadata,
    sa.Column("allocation_id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(63), sa.ForeignKey("tenants.tenant_id"), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("requested", sa.Integer, nullable=False),
    sa.Column("allocated_today", sa.Integer, nullable=False),
    sa.Column("remainder", sa.Integer, nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
)

allocation_lines = sa.Table(
    "allocation_lines",
    metadata,
    sa.Column("allocation_id", sa.String(32), sa.ForeignKey("allocations.allocation_id"), primary_key=True),
    sa.Column("address", sa.String(45), primary_key=True),
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("volume", sa.Integer, nullable=False),
    # What the IP had used for the provider that day once this line was reserved (used before + volume).
    sa.Column("level", sa.Integer, nullable=False),
)

# One row per (tenant, local day, kind) of once-a-day tenant-wide work (rotation), written in the same
# transaction as that work, so replicas racing for it do it once.
tenant_day_runs = sa.Table(
    "tenant_day_runs",
    metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
)

# The count of committed writes (one row), bumped by every writing unit of work: GetIp's cache is exact by it.
changes = counter_table(metadata, "ippool_changes")
