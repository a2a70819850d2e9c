"""The reputation database tables (created by adapters/migrations)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

monitored_ips = sa.Table(
    "monitored_ips",
    metadata,
    sa.Column("address", sa.String(45), primary_key=True),
    sa.Column("tenant_id", sa.String(63), nullable=False),
    sa.Column("helo_hostname", sa.String(253), nullable=False),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)

scan_results = sa.Table(
    "scan_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("address", sa.String(45), nullable=False),
    sa.Column("tenant_id", sa.String(63), nullable=False),
    sa.Column("scan_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("listed", sa.Boolean, nullable=False),
    # A serialized emailengine.reputation.v1.ScanResult.
    sa.Column("result", sa.LargeBinary, nullable=False),
)
