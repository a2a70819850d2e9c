"""Rows ↔ domain objects, and the alert summary kept in step with its deliveries."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time

import sqlalchemy as sa
from sqlalchemy.orm import Session

from notifier.adapters.tables import alerts, deliveries, routes
from notifier.domain.alert import Alert, Severity
from notifier.domain.routing import Channel, QuietHours, QuietMode, Route
from notifier.domain.status import AlertStatus, DeliveryFacts, DeliveryStatus, summarize


def alert_from_row(row: sa.Row) -> Alert:
    """The stored alert as the domain renders it (already validated when it was accepted)."""
    return Alert(
        tenant=row.tenant_id,
        severity=Severity[row.severity],
        dedup_key=row.dedup_key,
        title=row.title,
        text=row.text,
        source=row.source,
        occurred_at=row.occurred_at or row.create_time,
        labels=json.loads(row.labels or "{}"),
        resolved=bool(row.resolved),
        url=row.url or "",
    )


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def route_from_row(row: sa.Row) -> Route:
    quiet = None
    if row.quiet_start and row.quiet_end:
        quiet = QuietHours(_hhmm(row.quiet_start), _hhmm(row.quiet_end), row.quiet_time_zone or "UTC")
    return Route(
        route_id=row.route_id,
        channel=Channel(row.channel),
        target=row.target,
        tenant=row.tenant_id,
        min_severity=Severity(row.min_severity),
        quiet_hours=quiet,
        quiet_mode=QuietMode(row.quiet_mode or QuietMode.DEFER.value),
    )


@dataclass(frozen=True)
class RouteRecord:
    """A stored route. `secret` is the webhook signing key: for the sender only, never for the API."""

    route: Route
    secret: str | None
    create_time: datetime


def route_record(row: sa.Row) -> RouteRecord:
    return RouteRecord(route=route_from_row(row), secret=row.secret, create_time=row.create_time)


def load_routes(session: Session) -> list[Route]:
    return [route_from_row(r) for r in session.execute(sa.select(routes).order_by(routes.c.route_id)).all()]


def refresh_alerts(session: Session, alert_ids: Iterable[str]) -> None:
    """Recompute each alert's summary columns from its deliveries (same transaction as the change)."""
    ids = sorted(set(alert_ids))
    if not ids:
        return
    # Two routes of one alert finish at the same moment: without this lock each transaction would read the
    # other's delivery as still pending and both would store PENDING. Sorted, so lockers never deadlock.
    session.execute(
        sa.select(alerts.c.alert_id).where(alerts.c.alert_id.in_(ids)).order_by(alerts.c.alert_id).with_for_update()
    )
    rows = session.execute(sa.select(deliveries).where(deliveries.c.alert_id.in_(ids))).all()
    by_alert: dict[str, list[DeliveryFacts]] = {i: [] for i in ids}
    for row in rows:
        by_alert[row.alert_id].append(
            DeliveryFacts(DeliveryStatus(row.state), row.attempts, row.last_error, row.delivered_at)
        )
    suppressed = {
        r.alert_id
        for r in session.execute(
            sa.select(alerts.c.alert_id).where(alerts.c.alert_id.in_(ids), alerts.c.duplicate_of.is_not(None))
        ).all()
    }
    for alert_id, facts in by_alert.items():
        summary = summarize(facts, suppressed=alert_id in suppressed)
        session.execute(
            alerts.update()
            .where(alerts.c.alert_id == alert_id)
            .values(
                delivery_state=summary.state.value,
                attempts=summary.attempts,
                last_error=summary.last_error[:2000],
                delivery_time=summary.delivery_time,
            )
        )


__all__ = [
    "AlertStatus",
    "RouteRecord",
    "alert_from_row",
    "load_routes",
    "refresh_alerts",
    "route_from_row",
    "route_record",
]
