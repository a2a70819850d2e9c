"""Routes: created, read, listed and deleted through the API, stored in the notifier's database.

A tenant route belongs to its tenant (its operators manage it); an admin route sees everything and only
admins manage it; another tenant's route (or an admin route, to a tenant) reads exactly like a missing one.
Webhook secrets go in and never come out: StoredRoute carries them for the sender, the API shows only
`has_webhook_secret`.

What a tenant may point a route at is checked when it is created: a webhook URL must be one the outbound
client can call (scheme, host, port, no credentials) and must not lead to the platform's own or internal
addresses (resolved once here for a clear error; the connect-time check of every send stays the real guard);
a Telegram chat must be one an admin allowed for the tenant.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from libs import audit
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, Violations
from libs.outbound import check_url
from libs.pagination import decode_token, encode_token, page_size
from notifier.app.unit_of_work import UnitOfWorkFactory
from notifier.domain.outbox import StoredRoute
from notifier.domain.routing import Channel, QuietMode, Route, chat_key, routing_table_from_config
from notifier.domain.webhook_payload import webhook_secret_problem

ROUTE_DELETED = "route deleted before delivery"


class DestinationCheck(Protocol):
    def refusal(self, url: str) -> str | None:
        """Why requests to this URL would be refused (it resolves to a loopback, private, link-local or metadata
        address, or to a port of the platform itself); None when it may be called or cannot be resolved now."""
        ...


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
    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock, destinations: DestinationCheck):
        self._uow = unit_of_work
        self._clock = clock
        self._destinations = destinations

    def create(self, caller: Caller, spec: RouteSpec) -> StoredRoute:
        if spec.admin:
            caller.require_admin()
        else:
            caller.require_write(spec.tenant_id or caller.tenant_id)
        route = self._validated(spec, tenant_id="" if spec.admin else (spec.tenant_id or caller.tenant_id))
        now = self._clock.now()
        audit.note(resource=f"alert-routes/{route.route_id}", tenant_id=route.tenant or "")
        with self._uow() as uow:
            if route.channel is Channel.TELEGRAM and route.tenant is not None:
                if caller.is_admin:
                    # An admin pointing a tenant's route at a chat allows that chat for the tenant.
                    uow.tenant_settings.allow_chat(route.tenant, chat_key(route.target), now=now)
                elif not uow.tenant_settings.get(route.tenant).allows_chat(route.target):
                    raise PermissionDenied(
                        f"telegram_chat_id: chat {route.target} is not one an admin allowed for tenant "
                        f"{route.tenant!r}",
                        metadata={"field": "telegram_chat_id"},
                    )
            if uow.routes.get(route.route_id) is not None:
                raise AlreadyExists("route", route.route_id)
            secret = spec.webhook_secret if route.channel is Channel.WEBHOOK else None
            uow.routes.add(route, secret=secret, create_time=now)
            stored = uow.routes.get(route.route_id)
            uow.commit()
        assert stored is not None
        return stored

    def _validated(self, spec: RouteSpec, *, tenant_id: str) -> Route:
        route_id = spec.route_id or f"route-{secrets.token_hex(6)}"
        config: dict[str, object] = {"id": route_id, "channel": spec.channel, "min_severity": spec.min_severity}
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
            elif (problem := check_url(spec.webhook_url)) is not None:
                v.add("webhook_url", problem)
            elif (refused := self._destinations.refusal(spec.webhook_url)) is not None:
                v.add("webhook_url", refused)
            if (secret_problem := webhook_secret_problem(spec.webhook_secret)) is not None:
                v.add("webhook_secret", secret_problem)
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
        return route

    def _readable(self, caller: Caller, route_id: str) -> StoredRoute:
        with self._uow() as uow:
            found = uow.routes.get(route_id)
        # Another tenant's route (or an admin route, to a tenant) is answered exactly like a missing one.
        if found is None or not caller.may_read(found.tenant or ""):
            raise NotFound("route", route_id)
        return found

    def get(self, caller: Caller, route_id: str) -> StoredRoute:
        return self._readable(caller, route_id)

    def list(self, caller: Caller, tenant_id: str, size: int, token: str) -> tuple[list[StoredRoute], str]:
        tenant = caller.visible_tenant(tenant_id)
        limit = page_size(size)
        position = decode_token(token)
        after_id = str(position.get("r", "")) if position else ""
        with self._uow() as uow:
            found = uow.routes.list(tenant=tenant, limit=limit + 1, after_id=after_id)
        page = found[:limit]
        next_token = encode_token({"r": page[-1].route_id}) if len(found) > limit else ""
        return page, next_token

    def delete(self, caller: Caller, route_id: str) -> None:
        audit.note(resource=f"alert-routes/{route_id}")
        found = self._readable(caller, route_id)
        if found.is_admin:
            caller.require_admin()
        else:
            caller.require_write(found.tenant or "")
        audit.note(resource=f"alert-routes/{route_id}", tenant_id=found.tenant or "")
        with self._uow() as uow:
            touched = uow.deliveries.fail_route(route_id, ROUTE_DELETED)
            uow.routes.remove(route_id)
            uow.deliveries.refresh_summaries(touched)
            uow.commit()
