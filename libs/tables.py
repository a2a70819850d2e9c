"""SQLAlchemy Core views of the platform tables created by libs/migrations (one set per service DB)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

event_outbox = sa.Table(
    "event_outbox",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("relayed_at", sa.DateTime(timezone=True), nullable=True),
    # Until every consumer group has read it: the Redis server holding it (its run id) and its stream position.
    sa.Column("relayed_to", sa.String(64), nullable=True),
    sa.Column("stream_position", sa.String(40), nullable=True),
)

event_inbox = sa.Table(
    "event_inbox",
    metadata,
    sa.Column("consumer_group", sa.String(100), primary_key=True),
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
)

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("actor_role", sa.String(20), nullable=False),
    sa.Column("tenant_id", sa.String(100), nullable=False),
    sa.Column("service", sa.String(50), nullable=False),
    sa.Column("method", sa.String(200), nullable=False),
    sa.Column("resource", sa.String(300), nullable=False),
    sa.Column("outcome", sa.String(40), nullable=False),
    sa.Column("outcome_message", sa.Text, nullable=False),
)

job_runs = sa.Table(
    "job_runs",
    metadata,
    sa.Column("job_key", sa.String(200), primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
)

event_dead_letters = sa.Table(
    "event_dead_letters",
    metadata,
    sa.Column("consumer_group", sa.String(100), primary_key=True),
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
)
