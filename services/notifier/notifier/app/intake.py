"""Accepting alerts: dedup, routing and the outbox rows, all in one unit of work.

An alert accepted here is committed (the alert + one delivery per route that wants it + its dedup window)
before the caller hears back, so nothing accepted can be lost; the delivery job does the rest. A duplicate
(the same state of the same incident within the dedup window, or an older state than the one told:
`notifier.domain.dedup`) is stored as a SUPPRESSED alert pointing at the one that was sent, and counted there
and in the dedup window.

A route that cannot be used (stored in a form that no longer reads, or a Telegram chat no longer allowed for
its tenant) never stops the others: the alerts it would take get a FAILED delivery on it that says why.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from libs.clock import Clock
from libs.outbound import origin_of
from notifier.app.unit_of_work import ConcurrentInsert, NotifierUnitOfWork, UnitOfWorkFactory
from notifier.domain.alert import Alert
from notifier.domain.dedup import DedupPolicy
from notifier.domain.outbox import Delivery, StoredAlert, StoredRoute
from notifier.domain.routing import Channel, Route, RoutedDelivery, RoutingTable, TenantSettings, parse_chat_id
from notifier.domain.settlement import TELEGRAM_DISABLED
from notifier.domain.status import AlertStatus, AlertSummary, DeliveryStatus, summarize

log = logging.getLogger(__name__)

_DEDUP_RACES = 3
CHAT_NOT_ALLOWED = "the chat is not one an admin allowed for this tenant: not sent"


@dataclass(frozen=True)
class Accepted:
    alert_id: str
    accepted: bool  # False: a duplicate within the window, suppressed
    duplicate_of: str | None = None
    deliveries: int = 0

    @property
    def suppressed(self) -> bool:
        return not self.accepted


def destination_label(channel: Channel, target: str) -> str:
    """What the API may show of a route's target: the chat id, or only a webhook's origin (its path may hold a
    secret)."""
    if channel is Channel.TELEGRAM:
        try:
            return str(parse_chat_id(target))
        except ValueError:
            return ""
    return origin_of(target)


@dataclass(frozen=True)
class _Routing:
    """The routes of one unit of work: usable ones in a table, the others with why they cannot be used."""

    table: RoutingTable
    unusable: tuple[tuple[StoredRoute, str], ...]


class AlertIntake:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        clock: Clock,
        dedup: DedupPolicy,
        *,
        telegram_enabled: bool,
        on_accepted: Callable[[], None] | None = None,
        on_counted: Callable[[Accepted, Alert], None] | None = None,
    ):
        self._uow = unit_of_work
        self._clock = clock
        self._dedup = dedup
        self._telegram_enabled = telegram_enabled
        self._on_accepted = on_accepted
        self._on_counted = on_counted

    # -- entry points ---------------------------------------------------------------------------

    def submit(self, alert: Alert) -> Accepted:
        return self.submit_many([alert])[0]

    def submit_many(
        self, batch: Sequence[Alert], *, before_commit: Callable[[list[Accepted]], None] | None = None
    ) -> list[Accepted]:
        """Accepts every alert of the batch in one unit of work (all stored, or none). `before_commit` sees the
        results while they can still be noted in the same transaction (the audit line)."""
        for attempt in Retrying(
            retry=retry_if_exception_type(ConcurrentInsert), stop=stop_after_attempt(_DEDUP_RACES), reraise=True
        ):
            with attempt, self._uow() as uow:
                results = self.accept(uow, batch)
                if before_commit is not None:
                    before_commit(results)
                uow.commit()
        return results

    def accept(
        self, uow: NotifierUnitOfWork, batch: Sequence[Alert], *, hold: timedelta = timedelta(0)
    ) -> list[Accepted]:
        """Inside the caller's unit of work (an event handler's): stored when it commits. `hold`: the deliveries
        wait that long before they are sent (a listing alert waiting for its standby to be told with it)."""
        now = self._clock.now()
        routing = self._routing(uow, {alert.tenant for alert in batch})
        results = [self._accept(uow, alert, now, routing, hold=hold) for alert in batch]
        uow.after_commit(lambda: self._accepted(results, batch))
        return results

    def accept_told(self, uow: NotifierUnitOfWork, alert: Alert, *, told_by: str) -> Accepted:
        """Stores an alert another alert already told (`told_by`, e.g. the standby a listing caused) as its
        suppressed duplicate: no delivery of its own; its dedup window points at the one sent."""
        now = self._clock.now()
        previous = uow.dedup.lock(alert.tenant, alert.dedup_key)
        verdict = self._dedup.decide(previous, now, state=alert.incident_state, occurred_at=alert.occurred_at)
        alert_id = str(uuid.uuid4())
        uow.alerts.add(StoredAlert(alert_id, alert, now, AlertSummary(AlertStatus.SUPPRESSED), duplicate_of=told_by))
        uow.alerts.count_suppressed(told_by)
        uow.dedup.save(alert.tenant, alert.dedup_key, replace(verdict.state, alert_id=told_by), new=previous is None)
        result = Accepted(alert_id, accepted=False, duplicate_of=told_by)
        uow.after_commit(lambda: self._accepted([result], [alert]))
        return result

    def now(self) -> datetime:
        return self._clock.now()

    def forget_ended_windows(self) -> int:
        """Drop dedup windows that ended (they can no longer suppress anything)."""
        with self._uow() as uow:
            gone = uow.dedup.forget_before(self._clock.now() - self._dedup.window)
            uow.commit()
        return gone

    def _accepted(self, results: Sequence[Accepted], batch: Sequence[Alert]) -> None:
        if self._on_counted is not None:
            for result, alert in zip(results, batch, strict=True):
                self._on_counted(result, alert)
        if self._on_accepted is not None and any(r.accepted and r.deliveries for r in results):
            self._on_accepted()

    # -- the rule -------------------------------------------------------------------------------

    def _routing(self, uow: NotifierUnitOfWork, tenants: set[str]) -> _Routing:
        stored_routes = uow.routes.all()
        # A tenant's settings only decide whether its own Telegram routes may use their chat: read for those alone
        # (none at all when there are no routes).
        wanted = {
            s.tenant for s in stored_routes if s.tenant in tenants and s.route is not None and _needs_settings(s.route)
        }
        settings: dict[str, TenantSettings] = {t: uow.tenant_settings.get(t) for t in wanted if t}
        usable: list[Route] = []
        unusable: list[tuple[StoredRoute, str]] = []
        for stored in stored_routes:
            problem = route_problem(stored, settings.get(stored.tenant or ""))
            if problem:
                unusable.append((stored, problem))
            elif stored.route is not None:
                usable.append(stored.route)
        return _Routing(RoutingTable(usable), tuple(unusable))

    def _accept(
        self, uow: NotifierUnitOfWork, alert: Alert, now: datetime, routing: _Routing, *, hold: timedelta
    ) -> Accepted:
        previous = uow.dedup.lock(alert.tenant, alert.dedup_key)
        verdict = self._dedup.decide(previous, now, state=alert.incident_state, occurred_at=alert.occurred_at)
        alert_id = str(uuid.uuid4())
        if verdict.suppressed and previous is not None and previous.alert_id:
            uow.alerts.add(
                StoredAlert(alert_id, alert, now, AlertSummary(AlertStatus.SUPPRESSED), duplicate_of=previous.alert_id)
            )
            uow.dedup.save(alert.tenant, alert.dedup_key, verdict.state, new=False)
            uow.alerts.count_suppressed(previous.alert_id)
            return Accepted(alert_id, accepted=False, duplicate_of=previous.alert_id)

        routed = routing.table.route(alert, now)
        made = [self._delivery(alert_id, r, now, hold) for r in routed]
        made += [
            _failed_delivery(alert_id, stored, problem, now)
            for stored, problem in routing.unusable
            if stored.is_admin or stored.tenant == alert.tenant
        ]
        # Its summary from the deliveries made here (all it has yet): stored with it, not read back and rewritten.
        uow.alerts.add(StoredAlert(alert_id, alert, now, summarize([d.facts for d in made])))
        uow.deliveries.add(made)
        window = replace(verdict.state, alert_id=alert_id)
        uow.dedup.save(alert.tenant, alert.dedup_key, window, new=previous is None)
        return Accepted(alert_id, accepted=True, deliveries=len(routed))

    def _delivery(self, alert_id: str, routed: RoutedDelivery, now: datetime, hold: timedelta) -> Delivery:
        route = routed.route
        disabled = route.channel is Channel.TELEGRAM and not self._telegram_enabled
        return Delivery(
            delivery_id=str(uuid.uuid4()),
            alert_id=alert_id,
            route_id=route.route_id,
            route_tenant_id=route.tenant,
            channel=route.channel,
            destination=destination_label(route.channel, route.target),
            state=DeliveryStatus.DISABLED if disabled else DeliveryStatus.PENDING,
            accepted_at=now,
            deliver_at=max(routed.deliver_at, now + hold),
            silent=routed.silent,
            last_error=TELEGRAM_DISABLED if disabled else "",
        )


def _needs_settings(route: Route) -> bool:
    """Whether `route_problem` asks the route's tenant settings about it (a tenant's own Telegram route)."""
    return route.channel is Channel.TELEGRAM and not route.is_admin


def route_problem(stored: StoredRoute, tenant_settings: TenantSettings | None) -> str:
    """Why this stored route cannot take alerts now ("" when it can)."""
    if stored.route is None:
        return f"this route cannot be used: {stored.problem}"
    route = stored.route
    chat_allowed = tenant_settings is not None and tenant_settings.allows_chat(route.target)
    if _needs_settings(route) and not chat_allowed:
        return CHAT_NOT_ALLOWED
    return ""


def _failed_delivery(alert_id: str, stored: StoredRoute, problem: str, now: datetime) -> Delivery:
    channel = Channel.WEBHOOK if stored.channel == Channel.WEBHOOK.value else Channel.TELEGRAM
    return Delivery(
        delivery_id=str(uuid.uuid4()),
        alert_id=alert_id,
        route_id=stored.route_id,
        route_tenant_id=stored.tenant,
        channel=channel,
        destination=destination_label(channel, stored.target),
        state=DeliveryStatus.FAILED,
        accepted_at=now,
        deliver_at=now,
        last_error=problem,
    )
