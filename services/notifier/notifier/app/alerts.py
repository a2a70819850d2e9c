"""Alert use cases: send one (SendAlert), receive an Alertmanager webhook, read them back with their deliveries.

Tenant rules: a tenant's operator sends alerts for its tenant only and reads only its tenant's alerts;
platform alerts (tenant "") are sent and read by admins (and other services). Another tenant's alert reads
exactly like a missing one. On an alert a tenant may read, deliveries to admin routes are shown with their
state but neither their destination nor their error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from libs import audit
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import FieldViolation, InvalidArgument, NotFound
from libs.pagination import TimePosition, page_size
from notifier.app.intake import Accepted, AlertIntake
from notifier.app.unit_of_work import UnitOfWorkFactory
from notifier.domain.alert import PLATFORM_TENANT, Alert, Severity
from notifier.domain.alertmanager import parse_alertmanager_webhook
from notifier.domain.outbox import Delivery, StoredAlert
from notifier.domain.status import DeliveryStatus, summarize


@dataclass(frozen=True)
class DeliveryView:
    route_id: str
    channel: str
    destination: str  # "" when the caller may not see it (an admin route, to a tenant)
    state: str
    attempts: int
    last_error: str  # "" when the caller may not see it (an admin route, to a tenant)
    deliver_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    silent: bool
    digest: bool


@dataclass(frozen=True)
class AlertView:
    """An alert as one caller may see it: its delivery summary is over the deliveries shown to that caller."""

    alert_id: str
    alert: Alert
    create_time: datetime
    state: str
    attempts: int
    last_error: str
    delivery_time: datetime | None
    suppressed_count: int
    duplicate_of: str
    deliveries: tuple[DeliveryView, ...]


def default_dedup_key(severity: Severity, title: str, text: str, resolved: bool) -> str:
    """Without a key, "the same alert" is the same severity, headline, text and status."""
    digest = hashlib.sha256(f"{severity.name}\x00{title}\x00{text}\x00{resolved}".encode()).hexdigest()[:32]
    return f"auto:{digest}"


@dataclass(frozen=True)
class WebhookReceipt:
    results: tuple[Accepted, ...]

    @property
    def accepted(self) -> int:
        return sum(1 for r in self.results if r.accepted)

    @property
    def suppressed(self) -> int:
        return sum(1 for r in self.results if r.suppressed)


class AlertUseCases:
    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock, intake: AlertIntake):
        self._uow = unit_of_work
        self._clock = clock
        self._intake = intake

    # -- writes -----------------------------------------------------------------------------------

    def send(
        self,
        caller: Caller,
        *,
        tenant_id: str,
        severity: Severity | None,
        dedup_key: str,
        title: str,
        text: str,
        source: str,
        labels: Mapping[str, str],
        url: str,
        resolved: bool,
    ) -> AlertView:
        tenant = tenant_id or (PLATFORM_TENANT if caller.is_admin else caller.tenant_id)
        if severity is None:
            raise InvalidArgument(
                "severity", "must be ALERT_SEVERITY_INFO, ALERT_SEVERITY_WARNING or ALERT_SEVERITY_CRITICAL"
            )
        _require_write(caller, tenant)
        try:
            alert = Alert.create(
                tenant=tenant,
                severity=severity,
                dedup_key=dedup_key.strip() or default_dedup_key(severity, title.strip(), text.strip(), resolved),
                title=title,
                text=text,
                source=source or "api",
                occurred_at=self._clock.now(),
                labels=labels,
                resolved=resolved,
                url=url,
            )
        except InvalidArgument as exc:
            raise InvalidArgument.many([_rename(v) for v in exc.violations]) from None

        def note(results: list[Accepted]) -> None:
            audit.note(resource=f"alerts/{results[0].alert_id}", tenant_id=tenant)

        [accepted] = self._intake.submit_many([alert], before_commit=note)
        return self._read(caller, accepted.alert_id)

    def receive_alertmanager(self, caller: Caller, body: bytes) -> WebhookReceipt:
        """Parse and validate the whole payload first: a malformed one is refused whole, nothing stored."""
        batch = parse_alertmanager_webhook(body)
        for alert in batch:
            _require_write(caller, alert.tenant)

        def note(results: list[Accepted]) -> None:
            audit.note(resource=f"alertmanager/{len(results)} alerts")

        return WebhookReceipt(tuple(self._intake.submit_many(batch, before_commit=note)))

    # -- reads ------------------------------------------------------------------------------------

    def get(self, caller: Caller, alert_id: str) -> AlertView:
        return self._read(caller, alert_id)

    def list(self, caller: Caller, tenant_id: str, size: int, token: str) -> tuple[list[AlertView], str]:
        tenant = caller.visible_tenant(tenant_id)
        limit = page_size(size)
        after = TimePosition.decode(token)
        with self._uow() as uow:
            found = uow.alerts.list(
                tenant=tenant if tenant or not caller.is_admin else None, limit=limit + 1, after=after
            )
            page = found[:limit]
            deliveries = uow.deliveries.for_alerts([a.alert_id for a in page])
        next_token = ""
        if len(found) > limit:
            next_token = TimePosition(page[-1].create_time, page[-1].alert_id).encode()
        return [_view(caller, a, deliveries[a.alert_id]) for a in page], next_token

    def _read(self, caller: Caller, alert_id: str) -> AlertView:
        with self._uow() as uow:
            found = uow.alerts.get(alert_id)
            # Another tenant's alert (or a platform alert, to a tenant) is answered exactly like a missing one.
            if found is None or not caller.may_read(found.tenant):
                raise NotFound("alert", alert_id)
            deliveries = uow.deliveries.for_alerts([alert_id])[alert_id]
        return _view(caller, found, deliveries)


def _view(caller: Caller, stored: StoredAlert, deliveries: Sequence[Delivery]) -> AlertView:
    hidden = {d.delivery_id for d in deliveries if d.to_admin_route and not caller.is_admin}
    summary = stored.summary
    if hidden and not stored.suppressed:
        # The summary as this caller may see it: the admin routes' state counts, their errors do not show.
        facts = [replace(d.facts, last_error="") if d.delivery_id in hidden else d.facts for d in deliveries]
        summary = summarize(facts)
    return AlertView(
        alert_id=stored.alert_id,
        alert=stored.alert,
        create_time=stored.create_time,
        state=summary.state.value,
        attempts=summary.attempts,
        last_error=summary.last_error,
        delivery_time=summary.delivery_time,
        suppressed_count=stored.suppressed_count,
        duplicate_of=stored.duplicate_of or "",
        deliveries=tuple(_delivery_view(d, hidden=d.delivery_id in hidden) for d in deliveries),
    )


def _delivery_view(d: Delivery, *, hidden: bool) -> DeliveryView:
    return DeliveryView(
        route_id=d.route_id,
        channel=d.channel.value,
        destination="" if hidden else d.destination,
        state=d.state.value,
        attempts=d.attempts,
        last_error="" if hidden else d.last_error,
        deliver_at=d.deliver_at,
        next_attempt_at=d.next_attempt_at if d.state is DeliveryStatus.PENDING else None,
        delivered_at=d.delivered_at,
        silent=d.silent,
        digest=d.digest,
    )


def _require_write(caller: Caller, tenant: str) -> None:
    if tenant == PLATFORM_TENANT:
        caller.require_admin()
    else:
        caller.require_write(tenant)


def _rename(violation: FieldViolation) -> FieldViolation:
    """Domain names → contract names (`tenant` is `tenant_id` in SendAlertRequest)."""
    if violation.field == "tenant":
        return FieldViolation("tenant_id", violation.description)
    return violation
