"""The notifier database tables (created by adapters/migrations).

* `alerts`: every alert accepted or suppressed, with an aggregate of its deliveries' state.
* `routes`: where alerts go (chat ids, webhook URLs and secrets: never returned by the API), plus the
  per-route delivery bookkeeping (last send, 429 pause, the lease of the worker sending to it).
* `deliveries`: one row per (alert, route), written in the same transaction as the alert: the outbox.
* `dispatches`: one message on one route (a single alert, or a storm digest of several), with its retry
  schedule and how many of its parts are already in the chat.
* `dedup_states`: one row per (tenant, dedup key): the open dedup window and its suppressed count.
* `tenant_telegram_chats`: the Telegram chats an admin allowed each tenant's routes to use.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out (SQLite hands back naive values otherwise)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
    sa.Column("create_time", UtcDateTime, nullable=False),
    sa.Column("delivery_time", UtcDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("resolved", sa.Boolean, nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("occurred_at", UtcDateTime, nullable=True),
    sa.Column("suppressed_count", sa.Integer, nullable=False),
    sa.Column("duplicate_of", sa.String(36), nullable=True),
)

routes = sa.Table(
    "routes",
    metadata,
    sa.Column("route_id", sa.String(128), primary_key=True),
    sa.Column("tenant_id", sa.String(63), nullable=True),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=True),
    sa.Column("min_severity", sa.Integer, nullable=False),
    sa.Column("quiet_start", sa.String(5), nullable=True),
    sa.Column("quiet_end", sa.String(5), nullable=True),
    sa.Column("quiet_time_zone", sa.String(64), nullable=True),
    sa.Column("quiet_mode", sa.String(10), nullable=True),
    sa.Column("create_time", UtcDateTime, nullable=False),
    sa.Column("last_sent_at", UtcDateTime, nullable=True),
    sa.Column("paused_until", UtcDateTime, nullable=True),
    sa.Column("lease_owner", sa.String(200), nullable=True),
    sa.Column("lease_until", UtcDateTime, nullable=True),
)

dedup_states = sa.Table(
    "dedup_states",
    metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("dedup_key", sa.String(300), primary_key=True),
    sa.Column("window_started_at", UtcDateTime, nullable=False),
    sa.Column("suppressed_count", sa.Integer, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=True),
    sa.Column("alert_id", sa.String(36), nullable=False),
)

dispatches = sa.Table(
    "dispatches",
    metadata,
    sa.Column("dispatch_id", sa.String(36), primary_key=True),
    sa.Column("route_id", sa.String(128), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("digest", sa.Boolean, nullable=False),
    sa.Column("silent", sa.Boolean, nullable=False),
    sa.Column("parts_sent", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("first_attempt_at", UtcDateTime, nullable=True),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("delivered_at", UtcDateTime, nullable=True),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(36), primary_key=True),
    sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.alert_id"), nullable=False),
    sa.Column("route_id", sa.String(128), nullable=False),
    # The route's tenant when the delivery was made (NULL: admin route): who may see this delivery.
    sa.Column("route_tenant_id", sa.String(63), nullable=True),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("destination", sa.String(300), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("accepted_at", UtcDateTime, nullable=False),
    sa.Column("deliver_at", UtcDateTime, nullable=False),
    sa.Column("silent", sa.Boolean, nullable=False),
    sa.Column("dispatch_id", sa.String(36), nullable=True),
    sa.Column("digest", sa.Boolean, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=True),
    sa.Column("delivered_at", UtcDateTime, nullable=True),
)

tenant_telegram_chats = sa.Table(
    "tenant_telegram_chats",
    metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    # The chat id as text, or the @username in lowercase (notifier.domain.routing.chat_key).
    sa.Column("chat_key", sa.String(64), primary_key=True),
    sa.Column("allowed_at", UtcDateTime, nullable=False),
)
