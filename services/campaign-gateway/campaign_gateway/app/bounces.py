"""Use cases on where hard bounces and complaints go besides the tenant's suppression list (which accounting feeds,
see `app/accounting.py`, and `app/campaigns.py` serves): its bounce-forwarding webhook routes, and the delivery
worker that empties the bounce outbox.

Deliveries are written by the accounting pipeline in the same transaction as the batch that counted the bounce
(never lost). The worker leases a due delivery and records the attempt before making the request, so a crash
mid-request is retried (the receiver drops the repeat by its X-EmailEngine-Delivery id); a 2xx settles it, anything
else schedules the next attempt with backoff (`domain.bounce_forwarding.next_attempt`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from campaign_gateway.app.delivery_views import BounceRouteRecord, BounceRouteView
from campaign_gateway.app.ports import Webhooks
from campaign_gateway.app.unit_of_work import CampaignUnitOfWork
from campaign_gateway.domain.bounce_forwarding import RetryPlan, next_attempt
from libs import audit
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import NotFound, Violations
from libs.outbound import check_url

log = logging.getLogger(__name__)

EVENT_KINDS = ("HARD_BOUNCE", "COMPLAINT")
MIN_SECRET_BYTES = 16


@dataclass(frozen=True)
class BounceSettings:
    lease: timedelta = timedelta(seconds=60)
    batch: int = 100
    retry: RetryPlan = field(default_factory=RetryPlan)


class BounceUseCases:
    def __init__(
        self,
        unit_of_work: Callable[[], CampaignUnitOfWork],
        clock: Clock,
        *,
        webhooks: Webhooks,
        settings: BounceSettings,
    ):
        self._uow = unit_of_work
        self._clock = clock
        self._webhooks = webhooks
        self._settings = settings

    # ------------------------------------------------------------ routes

    def create_route(
        self, caller: Caller, tenant_id: str, *, url: str, secret: str, events: list[str]
    ) -> BounceRouteView:
        problems = Violations()
        if not tenant_id:
            problems.add("tenant_id", "is required")
        if (why := check_url(url)) is not None:
            problems.add("bounce_route.url", why)
        if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
            problems.add("bounce_route.secret", f"must be at least {MIN_SECRET_BYTES} bytes")
        for index, kind in enumerate(events):
            if kind not in EVENT_KINDS:
                problems.add(f"bounce_route.events[{index}]", "must be HARD_BOUNCE or COMPLAINT")
        problems.raise_if_any()
        caller.require_write(tenant_id)
        route = BounceRouteRecord(
            route_id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            url=url,
            secret=secret,
            events=tuple(sorted(set(events))),
            create_time=self._clock.now(),
        )
        audit.note(resource=f"tenants/{tenant_id}/bounce-routes/{route.route_id}")
        with self._uow() as uow:
            uow.bounce_routes.add(route)
            uow.commit()
            return BounceRouteView(route, uow.bounce_deliveries.counts(route.route_id))

    def _route(self, uow: CampaignUnitOfWork, caller: Caller, tenant_id: str, route_id: str) -> BounceRouteRecord:
        route = uow.bounce_routes.get(route_id)
        if route is None or route.tenant_id != tenant_id or not caller.may_read(route.tenant_id):
            raise NotFound("bounce route", route_id)  # another tenant's route answers like a missing one
        return route

    def get_route(self, caller: Caller, tenant_id: str, route_id: str) -> BounceRouteView:
        with self._uow() as uow:
            route = self._route(uow, caller, tenant_id, route_id)
            return BounceRouteView(route, uow.bounce_deliveries.counts(route_id))

    def list_routes(self, caller: Caller, tenant_id: str) -> list[BounceRouteView]:
        caller.require_read(tenant_id)
        with self._uow() as uow:
            return [
                BounceRouteView(route, uow.bounce_deliveries.counts(route.route_id))
                for route in uow.bounce_routes.for_tenant(tenant_id)
            ]

    def delete_route(self, caller: Caller, tenant_id: str, route_id: str) -> None:
        audit.note(resource=f"tenants/{tenant_id}/bounce-routes/{route_id}")
        with self._uow() as uow:
            route = self._route(uow, caller, tenant_id, route_id)
            caller.require_write(route.tenant_id)
            uow.bounce_routes.delete(route_id)
            uow.bounce_deliveries.give_up_route(route_id, "route deleted")
            uow.commit()

    # ------------------------------------------------------------ the delivery worker

    def deliver_due(self) -> int:
        """One pass over the due deliveries; returns how many were delivered."""
        owner = f"bounces-{uuid.uuid4().hex[:12]}"
        now = self._clock.now()
        with self._uow() as uow:
            due = uow.bounce_deliveries.due(now=now, limit=self._settings.batch)
        delivered = 0
        routes: dict[str, BounceRouteRecord | None] = {}
        for key in due:
            now = self._clock.now()
            with self._uow() as uow:
                claimed = uow.bounce_deliveries.claim(key, owner, now=now, until=now + self._settings.lease)
                if claimed is None:
                    continue
                if claimed.route_id not in routes:
                    routes[claimed.route_id] = uow.bounce_routes.get(claimed.route_id)
                uow.commit()  # the attempt is on record before the request is made
            route = routes[claimed.route_id]
            if route is None:
                self._settle(key, owner, delivered=False, retry_at=None, error="route deleted")
                continue
            answer = self._webhooks.send(
                url=route.url, secret=route.secret, body=claimed.body, delivery_id=key, now=self._clock.now()
            )
            if answer.delivered:
                self._settle(key, owner, delivered=True, retry_at=None, error="")
                delivered += 1
                continue
            retry_at = next_attempt(
                self._settings.retry,
                attempts=claimed.attempts,
                first_attempt_at=claimed.created_at,
                now=self._clock.now(),
                status_code=answer.status_code,
            )
            self._settle(key, owner, delivered=False, retry_at=retry_at, error=answer.error)
        return delivered

    def _settle(self, key: str, owner: str, *, delivered: bool, retry_at: object, error: str) -> None:
        with self._uow() as uow:
            uow.bounce_deliveries.settle(
                key,
                owner,
                delivered=delivered,
                now=self._clock.now(),
                next_attempt_at=retry_at,  # type: ignore[arg-type]
                error=error,
            )
            uow.commit()
