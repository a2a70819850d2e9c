"""Routes: created, read, listed and deleted through the API, stored in the notifier's database.

A tenant route belongs to its tenant (its operators manage it); an admin route sees everything and only
admins manage it. Webhook secrets go in and never come out: RouteRecord carries them for the sender, the
API shows only `has_webhook_secret`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from libs.auth import Caller
from libs.db import Database
from libs.errors import AlreadyExists, InvalidArgument, NotFound, Violations
from libs.pagination import decode_token, encode_token, page_size
from notifier.adapters.tables import deliveries, dispatches, routes
from notifier.adapters.webhook import WebhookSecret
from notifier.app.records import RouteRecord, refresh_alerts, route_record
from notifier.domain.routing import Channel, QuietMode, routing_table_from_config
from notifier.domain.status import DeliveryStatus

ROUTE_DELETED = "route deleted before delivery"


@dataclass(frozen=True)
class RouteSpec:
    """What a caller asks for (field names as in the contract)."""

    route_id: str = ""
    tenant_id: str = ""
    admin: bool = False
    channel: str = "telegram"
    telegram_chat_id: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""
    min_severity: str = "info"
    quiet_start: str = ""
    quiet_end: str = ""
    quiet_time_zone: str = ""
    quiet_mode: str = ""


_FIELD_NAMES = {
    "id": "route_id",
    "tenant": "tenant_id",
    "chat_id": "telegram_chat_id",
    "url": "webhook_url",
}


def _contract_field(path: str) -> str:
    name = path.removeprefix("routes[0]").lstrip(".")
    head, dot, rest = name.partition(".")
    return _FIELD_NAMES.get(head, head) + (dot + rest if dot else "") if name else "route"


class RouteUseCases:
    def __init__(self, db: Database, now: Callable[[], datetime]):
        self._db = db
        self._now = now

    def create(self, caller: Caller, spec: RouteSpec) -> RouteRecord:
        if spec.admin:
            caller.require_admin()
        else:
            caller.require_write(spec.tenant_id or caller.tenant_id)
        tenant_id = "" if spec.admin else (spec.tenant_id or caller.tenant_id)
        route_id = spec.route_id or f"route-{secrets.token_hex(6)}"
        config: dict[str, object] = {
            "id": route_id,
            "channel": spec.channel,
            "min_severity": spec.min_severity,
        }
        if spec.admin:
            config["admin"] = True
        else:
            config["tenant"] = tenant_id
        v = Violations()
        if not spec.admin and not tenant_id:
            v.add("tenant_id", "required unless admin is true")
        if spec.channel not in (Channel.TELEGRAM.value, Channel.WEBHOOK.value):
            v.add("channel", "must be ROUTE_CHANNEL_TELEGRAM or ROUTE_CHANNEL_WEBHOOK")
        elif spec.channel == Channel.TELEGRAM.value:
            config["chat_id"] = spec.telegram_chat_id
            if not spec.telegram_chat_id:
                v.add("telegram_chat_id", "required for a telegram route")
            for name, value in (("webhook_url", spec.webhook_url), ("webhook_secret", spec.webhook_secret)):
                if value:
                    v.add(name, "only for webhook routes")
        else:
            config["url"] = spec.webhook_url
            if spec.telegram_chat_id:
                v.add("telegram_chat_id", "only for telegram routes")
            if not spec.webhook_url:
                v.add("webhook_url", "required for a webhook route")
            try:
                WebhookSecret(spec.webhook_secret)
            except InvalidArgument as exc:
                v.add("webhook_secret", exc.violations[0].description)
        if spec.quiet_start or spec.quiet_end or spec.quiet_time_zone:
            config["quiet_hours"] = {
                "start": spec.quiet_start,
                "end": spec.quiet_end,
                "time_zone": spec.quiet_time_zone or "UTC",
                "mode": spec.quiet_mode or QuietMode.DEFER.value,
            }
        route = None
        if not v.items:
            try:
                route = routing_table_from_config({"routes": [config]}).routes[0]
            except InvalidArgument as exc:
                for violation in exc.violations:
                    v.add(_contract_field(violation.field), violation.description)
                if "quiet_hours" in config and all(f.field.startswith("quiet_hours") for f in v.items):
                    # Bad quiet hours stop the domain before it checks the rest: check the rest too.
                    try:
                        routing_table_from_config({"routes": [{**config, "quiet_hours": None}]})
                    except InvalidArgument as rest:
                        for violation in rest.violations:
                            v.add(_contract_field(violation.field), violation.description)
        v.raise_if_any()
        assert route is not None
        quiet = route.quiet_hours
        now = self._now()
        with self._db.transaction() as session:
            if session.execute(sa.select(routes.c.route_id).where(routes.c.route_id == route.route_id)).first():
                raise AlreadyExists("route", route.route_id)
            session.execute(
                routes.insert().values(
                    route_id=route.route_id,
                    tenant_id=route.tenant,
                    channel=route.channel.value,
                    target=str(route.target),
                    secret=spec.webhook_secret if route.channel is Channel.WEBHOOK else None,
                    min_severity=int(route.min_severity),
                    quiet_start=quiet.start.strftime("%H:%M") if quiet else None,
                    quiet_end=quiet.end.strftime("%H:%M") if quiet else None,
                    quiet_time_zone=quiet.time_zone if quiet else None,
                    quiet_mode=route.quiet_mode.value if quiet else None,
                    create_time=now,
                )
            )
            row = session.execute(sa.select(routes).where(routes.c.route_id == route.route_id)).one()
        return route_record(row)

    def _load(self, route_id: str) -> RouteRecord:
        with self._db.transaction() as session:
            row = session.execute(sa.select(routes).where(routes.c.route_id == route_id)).first()
        if row is None:
            raise NotFound("route", route_id)
        return route_record(row)

    @staticmethod
    def _require(caller: Caller, record: RouteRecord, *, write: bool) -> None:
        if record.route.is_admin:
            caller.require_admin()
        elif write:
            caller.require_write(record.route.tenant or "")
        else:
            caller.require_read(record.route.tenant or "")

    def get(self, caller: Caller, route_id: str) -> RouteRecord:
        record = self._load(route_id)
        self._require(caller, record, write=False)
        return record

    def list(self, caller: Caller, tenant_id: str, size: int, token: str) -> tuple[list[RouteRecord], str]:
        tenant = caller.visible_tenant(tenant_id)
        limit = page_size(size)
        query = sa.select(routes).order_by(routes.c.route_id).limit(limit + 1)
        if tenant:
            query = query.where(routes.c.tenant_id == tenant)
        position = decode_token(token)
        if position:
            query = query.where(routes.c.route_id > str(position.get("r", "")))
        with self._db.transaction() as session:
            rows = session.execute(query).all()
        page = rows[:limit]
        next_token = encode_token({"r": page[-1].route_id}) if len(rows) > limit else ""
        return [route_record(r) for r in page], next_token

    def delete(self, caller: Caller, route_id: str) -> None:
        record = self._load(route_id)
        self._require(caller, record, write=True)
        with self._db.transaction() as session:
            affected = [
                r.alert_id
                for r in session.execute(
                    sa.select(deliveries.c.alert_id).where(
                        deliveries.c.route_id == route_id, deliveries.c.state == DeliveryStatus.PENDING.value
                    )
                ).all()
            ]
            # Dispatches before deliveries: the order the delivery job locks them in.
            session.execute(
                dispatches.update()
                .where(dispatches.c.route_id == route_id, dispatches.c.state == DeliveryStatus.PENDING.value)
                .values(state=DeliveryStatus.FAILED.value, last_error=ROUTE_DELETED)
            )
            session.execute(
                deliveries.update()
                .where(deliveries.c.route_id == route_id, deliveries.c.state == DeliveryStatus.PENDING.value)
                .values(state=DeliveryStatus.FAILED.value, last_error=ROUTE_DELETED, next_attempt_at=None)
            )
            session.execute(routes.delete().where(routes.c.route_id == route_id))
            refresh_alerts(session, affected)
