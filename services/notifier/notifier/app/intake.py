"""Accepting alerts: dedup, routing and the outbox rows, all in one transaction.

An alert accepted here is committed (alert row + one delivery row per route that wants it + its dedup
state) before the caller hears back, so nothing accepted can be lost; the delivery job does the rest.
A duplicate within the dedup window is stored as a SUPPRESSED alert pointing at the one that was sent,
and counted there and in the dedup state.

Concurrency: the dedup row of (tenant, key) is locked first. On SQLite a no-op UPDATE takes the database
write lock (one writer at a time, so two duplicates cannot both be accepted); on PostgreSQL it locks the
row when it exists, and when two first-ever alerts race, the loser's INSERT fails inside a savepoint and
it decides again, now seeing the winner's row.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from libs.db import Database
from notifier.adapters.tables import alerts, dedup_states, deliveries
from notifier.app.records import load_routes, refresh_alerts
from notifier.domain.alert import Alert
from notifier.domain.dedup import DedupPolicy, DedupState
from notifier.domain.routing import Channel, Route, RoutedDelivery, RoutingTable
from notifier.domain.status import DeliveryStatus

log = logging.getLogger(__name__)

TELEGRAM_DISABLED = "telegram is not configured (EE_TELEGRAM_BOT_TOKEN is unset): stored, not sent"
_MAX_DEDUP_RACES = 3


@dataclass(frozen=True)
class Accepted:
    alert_id: str
    accepted: bool  # False: a duplicate within the window, suppressed
    duplicate_of: str | None = None
    deliveries: int = 0

    @property
    def suppressed(self) -> bool:
        return not self.accepted


class _DedupRace(Exception):
    """Another transaction created the same dedup row first: decide again."""


def destination_label(route: Route) -> str:
    """What the API may show of a route's target: the chat id, or only a webhook's origin."""
    if route.channel is Channel.TELEGRAM:
        return route.destination[1]
    from notifier.adapters.webhook import safe_origin

    return safe_origin(route.target)


class AlertIntake:
    def __init__(
        self,
        db: Database,
        now: Callable[[], datetime],
        dedup: DedupPolicy,
        *,
        telegram_enabled: bool,
        on_accepted: Callable[[], None] | None = None,
        on_counted: Callable[[Accepted, Alert], None] | None = None,
    ):
        self._db = db
        self._now = now
        self._dedup = dedup
        self._telegram_enabled = telegram_enabled
        self._on_accepted = on_accepted
        self._on_counted = on_counted

    # -- entry points ---------------------------------------------------------------------------

    def submit(self, alert: Alert) -> Accepted:
        return self.submit_many([alert])[0]

    def submit_many(self, batch: Sequence[Alert]) -> list[Accepted]:
        """Accepts every alert of the batch in one transaction (all stored, or none)."""
        for attempt in range(_MAX_DEDUP_RACES):
            try:
                with self._db.transaction() as session:
                    now = self._now()
                    table = RoutingTable(load_routes(session))
                    results = [self._accept(session, alert, now, table) for alert in batch]
                break
            except _DedupRace:
                if attempt == _MAX_DEDUP_RACES - 1:
                    raise
        self._after_commit(results, batch)
        return results

    def accept_in(self, session: Session, alert: Alert) -> Accepted:
        """Inside the caller's transaction (an event handler's): stored when that transaction commits."""
        result = self._accept(session, alert, self._now(), RoutingTable(load_routes(session)))
        sa.event.listen(session, "after_commit", lambda _s: self._after_commit([result], [alert]), once=True)
        return result

    def _after_commit(self, results: Sequence[Accepted], batch: Sequence[Alert]) -> None:
        if self._on_counted is not None:
            for result, alert in zip(results, batch, strict=True):
                self._on_counted(result, alert)
        if self._on_accepted is not None and any(r.accepted and r.deliveries for r in results):
            self._on_accepted()

    # -- the rule -------------------------------------------------------------------------------

    def _accept(self, session: Session, alert: Alert, now: datetime, table: RoutingTable) -> Accepted:
        key = sa.and_(dedup_states.c.tenant_id == alert.tenant, dedup_states.c.dedup_key == alert.dedup_key)
        # Lock first (see the module docstring), then read.
        session.execute(dedup_states.update().where(key).values(last_seen_at=dedup_states.c.last_seen_at))
        row = session.execute(sa.select(dedup_states).where(key).with_for_update()).first()
        previous = (
            DedupState(row.window_started_at, row.suppressed_count, row.last_seen_at) if row is not None else None
        )
        verdict = self._dedup.decide(previous, now)
        alert_id = str(uuid.uuid4())
        if verdict.suppressed:
            assert row is not None
            self._insert_alert(session, alert_id, alert, now, state="SUPPRESSED", duplicate_of=row.alert_id)
            session.execute(
                dedup_states.update()
                .where(key)
                .values(suppressed_count=verdict.state.suppressed_count, last_seen_at=verdict.state.last_seen_at)
            )
            session.execute(
                alerts.update()
                .where(alerts.c.alert_id == row.alert_id)
                .values(suppressed_count=alerts.c.suppressed_count + 1)
            )
            return Accepted(alert_id, accepted=False, duplicate_of=row.alert_id)

        routed = table.route(alert, now)
        self._insert_alert(session, alert_id, alert, now, state="PENDING", duplicate_of=None)
        for delivery in routed:
            self._insert_delivery(session, alert_id, delivery, now)
        refresh_alerts(session, [alert_id])
        state_values = {
            "window_started_at": verdict.state.window_started_at,
            "suppressed_count": verdict.state.suppressed_count,
            "last_seen_at": verdict.state.last_seen_at,
            "alert_id": alert_id,
        }
        if row is not None:
            session.execute(dedup_states.update().where(key).values(**state_values))
        elif session.get_bind().dialect.name == "postgresql":
            try:
                with session.begin_nested():
                    session.execute(
                        dedup_states.insert().values(tenant_id=alert.tenant, dedup_key=alert.dedup_key, **state_values)
                    )
            except IntegrityError:
                raise _DedupRace() from None
        else:
            session.execute(
                dedup_states.insert().values(tenant_id=alert.tenant, dedup_key=alert.dedup_key, **state_values)
            )
        return Accepted(alert_id, accepted=True, deliveries=len(routed))

    def _insert_alert(
        self, session: Session, alert_id: str, alert: Alert, now: datetime, *, state: str, duplicate_of: str | None
    ) -> None:
        session.execute(
            alerts.insert().values(
                alert_id=alert_id,
                tenant_id=alert.tenant,
                severity=alert.severity.name,
                dedup_key=alert.dedup_key,
                title=alert.title,
                text=alert.text,
                source=alert.source,
                delivery_state=state,
                create_time=now,
                delivery_time=None,
                attempts=0,
                last_error="",
                labels=json.dumps(dict(alert.labels), ensure_ascii=False, sort_keys=True),
                resolved=alert.resolved,
                url=alert.url,
                occurred_at=alert.occurred_at,
                suppressed_count=0,
                duplicate_of=duplicate_of,
            )
        )

    def _insert_delivery(self, session: Session, alert_id: str, routed: RoutedDelivery, now: datetime) -> None:
        route = routed.route
        disabled = route.channel is Channel.TELEGRAM and not self._telegram_enabled
        session.execute(
            deliveries.insert().values(
                delivery_id=str(uuid.uuid4()),
                alert_id=alert_id,
                route_id=route.route_id,
                route_tenant_id=route.tenant,
                channel=route.channel.value,
                destination=destination_label(route),
                state=(DeliveryStatus.DISABLED if disabled else DeliveryStatus.PENDING).value,
                accepted_at=now,
                deliver_at=routed.deliver_at,
                silent=routed.silent,
                dispatch_id=None,
                digest=False,
                attempts=0,
                last_error=TELEGRAM_DISABLED if disabled else "",
                next_attempt_at=None,
                delivered_at=None,
            )
        )
