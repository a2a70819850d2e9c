"""The notifier database tables (created by adapters/migrations)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(63), nullable=False),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("dedup_key", sa.String(300), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("delivery_state", sa.String(20), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivery_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
)
