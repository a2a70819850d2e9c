"""Alert use cases: send one (SendAlert), receive an Alertmanager webhook, read them back with their deliveries.

Tenant rules: a tenant's operator sends alerts for its tenant only and reads only its tenant's alerts;
platform alerts (tenant "") are sent and read by admins (and other services). On an alert a tenant may
read, deliveries to admin routes are shown with their state but without their destination.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from libs.auth import Caller
from libs.db import Database
from libs.errors import FieldViolation, InvalidArgument, NotFound
from libs.pagination import decode_token, encode_token, page_size
from notifier.adapters.tables import alerts, deliveries
from notifier.app.intake import Accepted, AlertIntake
from notifier.domain.alert import PLATFORM_TENANT, Alert, Severity
from notifier.domain.alertmanager import parse_alertmanager_webhook


@dataclass(frozen=True)
class DeliveryView:
    route_id: str
    channel: str
    destination: str  # "" when the caller may not see it (an admin route, to a tenant)
    state: str
    attempts: int
    last_error: str
    deliver_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    silent: bool
    digest: bool


@dataclass(frozen=True)
class AlertView:
    alert_id: str
    tenant_id: str
    severity: Severity
    dedup_key: str
    title: str
    text: str
    source: str
    state: str
    create_time: datetime
    delivery_time: datetime | None
    attempts: int
    last_error: str
    labels: Mapping[str, str]
    resolved: bool
    url: str
    occurred_at: datetime
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
    def __init__(self, db: Database, now: Callable[[], datetime], intake: AlertIntake):
        self._db = db
        self._now = now
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
                occurred_at=self._now(),
                labels=labels,
                resolved=resolved,
                url=url,
            )
        except InvalidArgument as exc:
            raise InvalidArgument.many([_rename(v) for v in exc.violations]) from None
        accepted = self._intake.submit(alert)
        return self._view(caller, accepted.alert_id)

    def receive_alertmanager(self, caller: Caller, body: bytes) -> WebhookReceipt:
        """Parse and validate the whole payload first: a malformed one is refused whole, nothing stored."""
        batch = parse_alertmanager_webhook(body)
        for alert in batch:
            _require_write(caller, alert.tenant)
        return WebhookReceipt(tuple(self._intake.submit_many(batch)))

    # -- reads ------------------------------------------------------------------------------------

    def get(self, caller: Caller, alert_id: str) -> AlertView:
        with self._db.transaction() as session:
            row = session.execute(sa.select(alerts).where(alerts.c.alert_id == alert_id)).first()
        if row is None:
            raise NotFound("alert", alert_id)
        _require_read(caller, row.tenant_id)
        return self._view(caller, alert_id)

    def list(self, caller: Caller, tenant_id: str, size: int, token: str) -> tuple[list[AlertView], str]:
        tenant = caller.visible_tenant(tenant_id)
        limit = page_size(size)
        query = sa.select(alerts).order_by(alerts.c.create_time.desc(), alerts.c.alert_id.desc()).limit(limit + 1)
        if tenant or not caller.is_admin:
            query = query.where(alerts.c.tenant_id == tenant)
        position = decode_token(token)
        if position:
            try:
                after = datetime.fromisoformat(str(position["t"]))
            except (KeyError, ValueError):
                raise InvalidArgument("page_token", "is not a token this API returned") from None
            query = query.where(
                sa.or_(
                    alerts.c.create_time < after,
                    sa.and_(alerts.c.create_time == after, alerts.c.alert_id < str(position.get("i", ""))),
                )
            )
        with self._db.transaction() as session:
            rows = session.execute(query).all()
            page = rows[:limit]
            views = self._views(caller, session, page)
        next_token = ""
        if len(rows) > limit:
            last = page[-1]
            next_token = encode_token({"t": last.create_time.isoformat(), "i": last.alert_id})
        return views, next_token

    def _view(self, caller: Caller, alert_id: str) -> AlertView:
        with self._db.transaction() as session:
            row = session.execute(sa.select(alerts).where(alerts.c.alert_id == alert_id)).one()
            return self._views(caller, session, [row])[0]

    def _views(self, caller: Caller, session: sa.orm.Session, rows: list[sa.Row]) -> list[AlertView]:
        ids = [r.alert_id for r in rows]
        by_alert: dict[str, list[DeliveryView]] = {i: [] for i in ids}
        if ids:
            for d in session.execute(
                sa.select(deliveries)
                .where(deliveries.c.alert_id.in_(ids))
                .order_by(deliveries.c.route_tenant_id.is_(None), deliveries.c.route_id)
            ).all():
                hidden = d.route_tenant_id is None and not caller.is_admin
                by_alert[d.alert_id].append(
                    DeliveryView(
                        route_id=d.route_id,
                        channel=d.channel,
                        destination="" if hidden else d.destination,
                        state=d.state,
                        attempts=d.attempts,
                        last_error=d.last_error,
                        deliver_at=d.deliver_at,
                        next_attempt_at=d.next_attempt_at if d.state == "PENDING" else None,
                        delivered_at=d.delivered_at,
                        silent=d.silent,
                        digest=d.digest,
                    )
                )
        return [
            AlertView(
                alert_id=r.alert_id,
                tenant_id=r.tenant_id,
                severity=Severity[r.severity],
                dedup_key=r.dedup_key,
                title=r.title,
                text=r.text,
                source=r.source,
                state=r.delivery_state,
                create_time=r.create_time,
                delivery_time=r.delivery_time,
                attempts=r.attempts,
                last_error=r.last_error,
                labels=json.loads(r.labels or "{}"),
                resolved=bool(r.resolved),
                url=r.url or "",
                occurred_at=r.occurred_at or r.create_time,
                suppressed_count=r.suppressed_count,
                duplicate_of=r.duplicate_of or "",
                deliveries=tuple(by_alert[r.alert_id]),
            )
            for r in rows
        ]


def _require_write(caller: Caller, tenant: str) -> None:
    if tenant == PLATFORM_TENANT:
        caller.require_admin()
    else:
        caller.require_write(tenant)


def _require_read(caller: Caller, tenant: str) -> None:
    if tenant == PLATFORM_TENANT:
        caller.require_admin()
    else:
        caller.require_read(tenant)


def _rename(violation: FieldViolation) -> FieldViolation:
    """Domain names → contract names (`tenant` is `tenant_id` in SendAlertRequest)."""
    if violation.field == "tenant":
        return FieldViolation("tenant_id", violation.description)
    return violation
