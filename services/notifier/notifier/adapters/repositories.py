"""The notifier's repositories over its own tables (see `notifier.app.unit_of_work` for what each one offers)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime, time
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from libs.errors import InvalidArgument
from libs.outbound import check_url
from libs.pagination import TimePosition
from notifier.adapters.tables import alerts, dedup_states, deliveries, dispatches, routes, tenant_telegram_chats
from notifier.app.unit_of_work import ConcurrentInsert
from notifier.domain.alert import Alert, Severity
from notifier.domain.dedup import DedupState
from notifier.domain.outbox import Delivery, Dispatch, PendingDelivery, StoredAlert, StoredRoute
from notifier.domain.routing import Channel, QuietHours, QuietMode, Route, TenantSettings
from notifier.domain.settlement import Settled, Settlement
from notifier.domain.status import AlertStatus, AlertSummary, DeliveryFacts, DeliveryStatus, summarize

PENDING = DeliveryStatus.PENDING.value
_MAX_SUMMARY_ERROR = 2000
RecordT = TypeVar("RecordT")


def _columns(table: sa.Table, record: object) -> dict[str, object]:
    """A record's fields that are the table's columns (same names), as values to write."""
    return {f.name: getattr(record, f.name) for f in fields(record) if f.name in table.c}  # type: ignore[arg-type]


def _from_row(cls: type[RecordT], row: sa.Row, **converted: object) -> RecordT:
    """A record from the row's columns of the same names; `converted` gives the ones that need more than that."""
    values = {f.name: row._mapping[f.name] for f in fields(cls) if f.name in row._mapping}  # type: ignore[arg-type]
    return cls(**{**values, **converted})


# -- alerts -----------------------------------------------------------------------------------------


class SqlAlertRepository:
    def __init__(self, session: Session):
        self._session = session

    def add(self, alert: StoredAlert) -> None:
        a, summary = alert.alert, alert.summary
        self._session.execute(
            _ALERT_INSERT,
            {
                "alert_id": alert.alert_id,
                "tenant_id": a.tenant,
                "severity": a.severity.name,
                "dedup_key": a.dedup_key,
                "title": a.title,
                "text": a.text,
                "source": a.source,
                "delivery_state": summary.state.value,
                "create_time": alert.create_time,
                "delivery_time": summary.delivery_time,
                "attempts": summary.attempts,
                "last_error": summary.last_error[:_MAX_SUMMARY_ERROR],
                "labels": json.dumps(dict(a.labels), ensure_ascii=False, sort_keys=True),
                "resolved": a.resolved,
                "url": a.url,
                "occurred_at": a.occurred_at,
                "suppressed_count": alert.suppressed_count,
                "duplicate_of": alert.duplicate_of,
                "state": a.state,
            },
        )

    def get(self, alert_id: str) -> StoredAlert | None:
        row = self._session.execute(sa.select(alerts).where(alerts.c.alert_id == alert_id)).first()
        return _stored_alert(row) if row is not None else None

    def get_many(self, alert_ids: Sequence[str]) -> list[StoredAlert]:
        if not alert_ids:
            return []
        found = {
            row.alert_id: _stored_alert(row)
            for row in self._session.execute(sa.select(alerts).where(alerts.c.alert_id.in_(list(alert_ids)))).all()
        }
        return [found[i] for i in alert_ids if i in found]

    def list(self, *, tenant: str | None, limit: int, after: TimePosition | None) -> list[StoredAlert]:
        query = sa.select(alerts).order_by(alerts.c.create_time.desc(), alerts.c.alert_id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(alerts.c.tenant_id == tenant)
        if after is not None:
            query = query.where(
                sa.or_(
                    alerts.c.create_time < after.time,
                    sa.and_(alerts.c.create_time == after.time, alerts.c.alert_id < after.id),
                )
            )
        return [_stored_alert(row) for row in self._session.execute(query).all()]

    def mark_told_by(self, alert_ids: Sequence[str], told_by: str) -> None:
        if not alert_ids:
            return
        self._session.execute(_MARK_TOLD_BY, {"alert_ids": list(alert_ids), "told_by": told_by})
        self._session.execute(_COUNT_SUPPRESSED, {"key_alert_id": told_by, "added": len(set(alert_ids))})

    def count_suppressed(self, alert_id: str) -> None:
        self._session.execute(_COUNT_SUPPRESSED, {"key_alert_id": alert_id, "added": 1})


# Statements of the intake's path, built once and given their values at execution: built per call, SQLAlchemy's
# statement construction and cache-key generation cost most of an event's CPU.
_ALERT_INSERT = alerts.insert()
_MARK_TOLD_BY = (
    alerts.update()
    .where(alerts.c.alert_id.in_(sa.bindparam("alert_ids", expanding=True)))
    .values(duplicate_of=sa.bindparam("told_by"))
)
_COUNT_SUPPRESSED = (
    alerts.update()
    .where(alerts.c.alert_id == sa.bindparam("key_alert_id"))
    .values(suppressed_count=alerts.c.suppressed_count + sa.bindparam("added", type_=sa.Integer))
)


def _stored_alert(row: sa.Row) -> StoredAlert:
    # Stored alerts were validated when accepted: they are rebuilt as they are, not validated again.
    alert = Alert(
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
        state=row.state or "",
    )
    return StoredAlert(
        alert_id=row.alert_id,
        alert=alert,
        create_time=row.create_time,
        summary=AlertSummary(AlertStatus(row.delivery_state), row.attempts, row.last_error, row.delivery_time),
        suppressed_count=row.suppressed_count,
        duplicate_of=row.duplicate_of,
    )


# -- dedup windows ----------------------------------------------------------------------------------


_DEDUP_KEY = sa.and_(
    dedup_states.c.tenant_id == sa.bindparam("key_tenant"), dedup_states.c.dedup_key == sa.bindparam("key_dedup")
)
# The no-op UPDATE locks and RETURNING reads in one round trip: the row returned is the latest committed version,
# as a SELECT ... FOR UPDATE after the UPDATE read it.
_DEDUP_LOCK = (
    dedup_states.update()
    .where(_DEDUP_KEY)
    .values(last_seen_at=dedup_states.c.last_seen_at)
    .returning(
        dedup_states.c.window_started_at,
        dedup_states.c.suppressed_count,
        dedup_states.c.last_seen_at,
        dedup_states.c.alert_id,
        dedup_states.c.state,
        dedup_states.c.state_at,
    )
)
_DEDUP_SAVE = dedup_states.update().where(_DEDUP_KEY)
_DEDUP_INSERT = dedup_states.insert()


class SqlDedupRepository:
    """Lock first, then read. On SQLite a no-op UPDATE takes the database write lock (one writer at a time, so
    two duplicates cannot both be accepted); on PostgreSQL it locks the row when it exists, and when two
    first-ever alerts race, the loser's INSERT fails inside a savepoint (ConcurrentInsert) and the use case
    decides again, now seeing the winner's row."""

    def __init__(self, session: Session):
        self._session = session

    def lock(self, tenant: str, dedup_key: str) -> DedupState | None:
        row = self._session.execute(_DEDUP_LOCK, {"key_tenant": tenant, "key_dedup": dedup_key}).first()
        if row is None:
            return None
        return DedupState(
            row.window_started_at, row.suppressed_count, row.last_seen_at, row.alert_id, row.state or "", row.state_at
        )

    def save(self, tenant: str, dedup_key: str, state: DedupState, *, new: bool) -> None:
        values = {
            "window_started_at": state.window_started_at,
            "suppressed_count": state.suppressed_count,
            "last_seen_at": state.last_seen_at,
            "alert_id": state.alert_id,
            "state": state.state,
            "state_at": state.state_at,
        }
        if not new:
            self._session.execute(_DEDUP_SAVE, {"key_tenant": tenant, "key_dedup": dedup_key, **values})
            return
        row = {"tenant_id": tenant, "dedup_key": dedup_key, **values}
        if self._session.get_bind().dialect.name != "postgresql":
            self._session.execute(_DEDUP_INSERT, row)
            return
        try:
            with self._session.begin_nested():
                self._session.execute(_DEDUP_INSERT, row)
        except IntegrityError:
            raise ConcurrentInsert() from None

    def forget_before(self, cutoff: datetime) -> int:
        gone = self._session.execute(sa.delete(dedup_states).where(dedup_states.c.window_started_at < cutoff))
        return int(gone.rowcount or 0)  # type: ignore[attr-defined]


# -- routes -----------------------------------------------------------------------------------------


_ALL_ROUTES = sa.select(routes).order_by(routes.c.route_id)  # read by every alert accepted: built once


class SqlRouteRepository:
    def __init__(self, session: Session):
        self._session = session

    def add(self, route: Route, *, secret: str | None, create_time: datetime) -> None:
        quiet = route.quiet_hours
        self._session.execute(
            routes.insert().values(
                route_id=route.route_id,
                tenant_id=route.tenant,
                channel=route.channel.value,
                target=str(route.target),
                secret=secret,
                min_severity=int(route.min_severity),
                quiet_start=quiet.start.strftime("%H:%M") if quiet else None,
                quiet_end=quiet.end.strftime("%H:%M") if quiet else None,
                quiet_time_zone=quiet.time_zone if quiet else None,
                quiet_mode=route.quiet_mode.value if quiet else None,
                create_time=create_time,
            )
        )

    def get(self, route_id: str) -> StoredRoute | None:
        row = self._session.execute(sa.select(routes).where(routes.c.route_id == route_id)).first()
        return stored_route(row) if row is not None else None

    def all(self) -> list[StoredRoute]:
        return [stored_route(row) for row in self._session.execute(_ALL_ROUTES)]

    def list(self, *, tenant: str, limit: int, after_id: str) -> list[StoredRoute]:
        query = sa.select(routes).order_by(routes.c.route_id).limit(limit)
        if tenant:
            query = query.where(routes.c.tenant_id == tenant)
        if after_id:
            query = query.where(routes.c.route_id > after_id)
        return [stored_route(row) for row in self._session.execute(query).all()]

    def remove(self, route_id: str) -> None:
        self._session.execute(routes.delete().where(routes.c.route_id == route_id))

    def follow_chat_migration(self, route_id: str, new_chat: str) -> None:
        self._session.execute(routes.update().where(routes.c.route_id == route_id).values(target=new_chat))
        self._session.execute(
            deliveries.update()
            .where(deliveries.c.route_id == route_id, deliveries.c.state == PENDING)
            .values(destination=new_chat)
        )


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def stored_route(row: sa.Row) -> StoredRoute:
    """The stored route; one that cannot be used (however it got stored) comes back with its problem, so that
    reading it never breaks a listing or the routing of a tenant's alerts."""
    route: Route | None = None
    problem = ""
    try:
        quiet = None
        if row.quiet_start and row.quiet_end:
            quiet = QuietHours(_hhmm(row.quiet_start), _hhmm(row.quiet_end), row.quiet_time_zone or "UTC")
        route = Route(
            route_id=row.route_id,
            channel=Channel(row.channel),
            target=row.target,
            tenant=row.tenant_id,
            min_severity=Severity(row.min_severity),
            quiet_hours=quiet,
            quiet_mode=QuietMode(row.quiet_mode or QuietMode.DEFER.value),
        )
        if route.channel is Channel.WEBHOOK and (url_problem := check_url(route.target)) is not None:
            route, problem = None, f"webhook_url {url_problem}"
    except InvalidArgument as exc:
        problem = exc.message
    except (ValueError, TypeError, KeyError) as exc:
        problem = f"the stored route cannot be read ({type(exc).__name__})"
    return StoredRoute(
        route_id=row.route_id,
        tenant=row.tenant_id,
        channel=row.channel,
        target=row.target,
        route=route,
        problem=problem,
        secret=row.secret,
        create_time=row.create_time,
        last_sent_at=row.last_sent_at,
        paused_until=row.paused_until,
    )


class SqlRouteLeaseRepository:
    def __init__(self, session: Session):
        self._session = session

    def take(self, route_id: str, owner: str, *, now: datetime, until: datetime) -> bool:
        taken = self._session.execute(
            routes.update()
            .where(
                routes.c.route_id == route_id,
                sa.or_(routes.c.lease_until.is_(None), routes.c.lease_until < now, routes.c.lease_owner == owner),
            )
            .values(lease_owner=owner, lease_until=until)
        )
        return taken.rowcount == 1  # type: ignore[attr-defined]

    def release(self, route_id: str, owner: str) -> None:
        self._session.execute(
            routes.update()
            .where(routes.c.route_id == route_id, routes.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


# -- deliveries and dispatches (the outbox) ----------------------------------------------------------


_HELD_ALERTS = (
    sa.select(deliveries.c.alert_id)
    .distinct()
    .join(alerts, alerts.c.alert_id == deliveries.c.alert_id)
    .where(
        alerts.c.tenant_id == sa.bindparam("tenant_id"),
        alerts.c.dedup_key.like(sa.bindparam("pattern"), escape="/"),
        deliveries.c.state == PENDING,
        deliveries.c.dispatch_id.is_(None),
        deliveries.c.deliver_at > sa.bindparam("now"),
    )
)


class SqlDeliveryRepository:
    def __init__(self, session: Session):
        self._session = session

    def add(self, made: Sequence[Delivery]) -> None:
        if made:
            rows = [_columns(deliveries, replace(d, destination=d.destination[:300])) for d in made]
            self._session.execute(deliveries.insert(), rows)

    def for_alerts(self, alert_ids: Sequence[str]) -> dict[str, list[Delivery]]:
        found: dict[str, list[Delivery]] = {i: [] for i in alert_ids}
        if not alert_ids:
            return found
        query = (
            sa.select(deliveries)
            .where(deliveries.c.alert_id.in_(list(alert_ids)))
            .order_by(deliveries.c.route_tenant_id.is_(None), deliveries.c.route_id)
        )
        for row in self._session.execute(query).all():
            found[row.alert_id].append(_delivery(row))
        return found

    def due_routes(self, now: datetime) -> list[str]:
        query = (
            sa.select(deliveries.c.route_id)
            .distinct()
            .join(routes, routes.c.route_id == deliveries.c.route_id)
            .where(
                deliveries.c.state == PENDING,
                deliveries.c.deliver_at <= now,
                sa.or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= now),
                sa.or_(routes.c.paused_until.is_(None), routes.c.paused_until <= now),
                sa.or_(routes.c.lease_until.is_(None), routes.c.lease_until < now),
            )
        )
        return sorted(row.route_id for row in self._session.execute(query).all())

    def unplanned(self, route_id: str, *, due_by: datetime) -> list[PendingDelivery]:
        query = sa.select(deliveries).where(
            deliveries.c.route_id == route_id,
            deliveries.c.state == PENDING,
            deliveries.c.dispatch_id.is_(None),
            deliveries.c.deliver_at <= due_by,
        )
        return [
            PendingDelivery(row.delivery_id, row.alert_id, row.accepted_at, row.silent)
            for row in self._session.execute(query).all()
        ]

    def accepted_since(self, route_id: str, since: datetime) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(deliveries)
            .where(deliveries.c.route_id == route_id, deliveries.c.accepted_at >= since)
        )
        return int(self._session.execute(query).scalar_one())

    def fail_route(self, route_id: str, reason: str) -> list[str]:
        touched = [
            row.alert_id
            for row in self._session.execute(
                sa.select(deliveries.c.alert_id).where(deliveries.c.route_id == route_id, deliveries.c.state == PENDING)
            ).all()
        ]
        # Dispatches before deliveries: the order the delivery job locks them in.
        self._session.execute(
            dispatches.update()
            .where(dispatches.c.route_id == route_id, dispatches.c.state == PENDING)
            .values(state=DeliveryStatus.FAILED.value, last_error=reason)
        )
        self._session.execute(
            deliveries.update()
            .where(deliveries.c.route_id == route_id, deliveries.c.state == PENDING)
            .values(state=DeliveryStatus.FAILED.value, last_error=reason, next_attempt_at=None)
        )
        return sorted(set(touched))

    def held_alerts(self, tenant: str, dedup_prefix: str, now: datetime) -> list[str]:
        # The prefix escaped as `startswith(..., autoescape=True)` would, so that the statement can be built once.
        pattern = dedup_prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
        found = self._session.execute(_HELD_ALERTS, {"tenant_id": tenant, "pattern": pattern, "now": now})
        return sorted(found.scalars())

    def drop_held(self, alert_ids: Sequence[str]) -> None:
        if alert_ids:
            self._session.execute(
                deliveries.delete().where(
                    deliveries.c.alert_id.in_(list(alert_ids)),
                    deliveries.c.state == PENDING,
                    deliveries.c.dispatch_id.is_(None),
                )
            )

    def refresh_summaries(self, alert_ids: Sequence[str]) -> None:
        ids = sorted(set(alert_ids))
        if not ids:
            return
        # Two routes of one alert finish at the same moment: without this lock each transaction would read the
        # other's delivery as still pending and both would store PENDING. Sorted, so lockers never deadlock.
        self._session.execute(
            sa.select(alerts.c.alert_id).where(alerts.c.alert_id.in_(ids)).order_by(alerts.c.alert_id).with_for_update()
        )
        facts: dict[str, list[DeliveryFacts]] = {i: [] for i in ids}
        for row in self._session.execute(sa.select(deliveries).where(deliveries.c.alert_id.in_(ids))).all():
            facts[row.alert_id].append(_delivery(row).facts)
        suppressed = set(
            self._session.execute(
                sa.select(alerts.c.alert_id).where(alerts.c.alert_id.in_(ids), alerts.c.duplicate_of.is_not(None))
            ).scalars()
        )
        for alert_id, found in facts.items():
            summary = summarize(found, suppressed=alert_id in suppressed)
            self._session.execute(
                alerts.update()
                .where(alerts.c.alert_id == alert_id)
                .values(
                    delivery_state=summary.state.value,
                    attempts=summary.attempts,
                    last_error=summary.last_error[:_MAX_SUMMARY_ERROR],
                    delivery_time=summary.delivery_time,
                )
            )


def _delivery(row: sa.Row) -> Delivery:
    return _from_row(
        Delivery,
        row,
        channel=Channel(row.channel),
        state=DeliveryStatus(row.state),
        silent=bool(row.silent),
        digest=bool(row.digest),
    )


# What a settled attempt makes of the message and of its deliveries.
_DISPATCH_STATE = {
    Settled.DELIVERED: DeliveryStatus.DELIVERED,
    Settled.RETRY: DeliveryStatus.PENDING,
    Settled.FAILED: DeliveryStatus.FAILED,
    Settled.DISABLED: DeliveryStatus.FAILED,
}
_DELIVERY_STATE = {**_DISPATCH_STATE, Settled.DISABLED: DeliveryStatus.DISABLED}


class SqlDispatchRepository:
    def __init__(self, session: Session, deliveries_of: SqlDeliveryRepository):
        self._session = session
        self._deliveries = deliveries_of

    def open_for_route(self, route_id: str) -> Dispatch | None:
        row = self._session.execute(
            sa.select(dispatches)
            .where(dispatches.c.route_id == route_id, dispatches.c.state == PENDING)
            .order_by(dispatches.c.created_at)
            .limit(1)
        ).first()
        return _dispatch(row) if row is not None else None

    def add(self, dispatch: Dispatch, delivery_ids: Sequence[str]) -> None:
        self._session.execute(dispatches.insert().values(**_columns(dispatches, dispatch)))
        self._session.execute(
            deliveries.update()
            .where(deliveries.c.delivery_id.in_(list(delivery_ids)))
            .values(dispatch_id=dispatch.dispatch_id, digest=dispatch.digest)
        )

    def pending_alert_ids(self, dispatch_id: str) -> list[str]:
        query = (
            sa.select(deliveries.c.alert_id)
            .where(deliveries.c.dispatch_id == dispatch_id, deliveries.c.state == PENDING)
            .order_by(deliveries.c.accepted_at, deliveries.c.delivery_id)
        )
        return list(self._session.execute(query).scalars())

    def record_attempt(self, dispatch: Dispatch) -> None:
        self._session.execute(
            dispatches.update()
            .where(dispatches.c.dispatch_id == dispatch.dispatch_id)
            .values(
                attempts=dispatch.attempts,
                first_attempt_at=dispatch.first_attempt_at,
                next_attempt_at=dispatch.next_attempt_at,
            )
        )
        self._session.execute(
            deliveries.update()
            .where(deliveries.c.dispatch_id == dispatch.dispatch_id, deliveries.c.state == PENDING)
            .values(attempts=deliveries.c.attempts + 1, next_attempt_at=dispatch.next_attempt_at)
        )

    def settle(self, dispatch: Dispatch, settlement: Settlement, *, now: datetime) -> None:
        members = self.pending_alert_ids(dispatch.dispatch_id)
        delivered_at = now if settlement.state is Settled.DELIVERED else None
        self._session.execute(
            dispatches.update()
            .where(dispatches.c.dispatch_id == dispatch.dispatch_id)
            .values(
                state=_DISPATCH_STATE[settlement.state].value,
                parts_sent=settlement.parts_sent,
                last_error=settlement.error,
                next_attempt_at=settlement.retry_at or dispatch.next_attempt_at,
                delivered_at=delivered_at,
            )
        )
        self._session.execute(
            deliveries.update()
            .where(deliveries.c.dispatch_id == dispatch.dispatch_id, deliveries.c.state == PENDING)
            .values(
                state=_DELIVERY_STATE[settlement.state].value,
                last_error=settlement.error,
                next_attempt_at=settlement.retry_at,
                delivered_at=delivered_at,
            )
        )
        if settlement.reached_destination:
            self._session.execute(
                routes.update().where(routes.c.route_id == dispatch.route_id).values(last_sent_at=now)
            )
        if settlement.pause_until is not None:
            if settlement.pause_every_telegram_route:
                scope = routes.c.channel == Channel.TELEGRAM.value
            else:
                scope = routes.c.route_id == dispatch.route_id
            self._session.execute(
                routes.update()
                .where(scope, sa.or_(routes.c.paused_until.is_(None), routes.c.paused_until < settlement.pause_until))
                .values(paused_until=settlement.pause_until)
            )
        self._deliveries.refresh_summaries(members)


def _dispatch(row: sa.Row) -> Dispatch:
    return _from_row(Dispatch, row, state=DeliveryStatus(row.state), digest=bool(row.digest), silent=bool(row.silent))


# -- tenant settings --------------------------------------------------------------------------------


_TENANT_CHATS = sa.select(tenant_telegram_chats).where(tenant_telegram_chats.c.tenant_id == sa.bindparam("tenant_id"))


class SqlTenantSettingsRepository:
    def __init__(self, session: Session):
        self._session = session

    def get(self, tenant: str) -> TenantSettings:
        rows = self._session.execute(_TENANT_CHATS, {"tenant_id": tenant}).all()
        return TenantSettings(
            tenant=tenant,
            allowed_telegram_chats=frozenset(row.chat_key for row in rows),
            update_time=max((row.allowed_at for row in rows), default=None),
        )

    def save(self, settings: TenantSettings) -> None:
        self._session.execute(
            tenant_telegram_chats.delete().where(tenant_telegram_chats.c.tenant_id == settings.tenant)
        )
        if settings.allowed_telegram_chats:
            self._session.execute(
                tenant_telegram_chats.insert(),
                [
                    {"tenant_id": settings.tenant, "chat_key": chat, "allowed_at": settings.update_time}
                    for chat in sorted(settings.allowed_telegram_chats)
                ],
            )

    def allow_chat(self, tenant: str, chat_key: str, *, now: datetime) -> None:
        key = sa.and_(tenant_telegram_chats.c.tenant_id == tenant, tenant_telegram_chats.c.chat_key == chat_key)
        if self._session.execute(sa.select(tenant_telegram_chats.c.chat_key).where(key)).first() is None:
            self._session.execute(
                tenant_telegram_chats.insert().values(tenant_id=tenant, chat_key=chat_key, allowed_at=now)
            )
