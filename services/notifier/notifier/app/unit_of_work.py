"""What the notifier's use cases need from storage: a unit of work with one repository per aggregate.

The SQL implementation is `notifier.adapters.unit_of_work`; the use-case tests use an in-memory fake
(`tests/unit/notifier/fakes.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from libs.pagination import TimePosition
from libs.unit_of_work import UnitOfWork
from notifier.domain.dedup import DedupState
from notifier.domain.outbox import Delivery, Dispatch, PendingDelivery, StoredAlert, StoredRoute
from notifier.domain.routing import Route, TenantSettings
from notifier.domain.settlement import Settlement


class ConcurrentInsert(Exception):
    """Another transaction stored the same row first: the unit of work is tried again and then sees it."""


class AlertRepository(Protocol):
    def add(self, alert: StoredAlert) -> None: ...

    def get(self, alert_id: str) -> StoredAlert | None: ...

    def get_many(self, alert_ids: Sequence[str]) -> list[StoredAlert]:
        """In the order asked; unknown ids are left out."""
        ...

    def list(self, *, tenant: str | None, limit: int, after: TimePosition | None) -> list[StoredAlert]:
        """Newest first; every tenant's (platform alerts included) when `tenant` is None."""
        ...

    def mark_told_by(self, alert_ids: Sequence[str], told_by: str) -> None:
        """These alerts were told by another one (`told_by`): each becomes its suppressed duplicate."""
        ...

    def count_suppressed(self, alert_id: str) -> None:
        """One more duplicate of this alert was suppressed."""
        ...


class DedupRepository(Protocol):
    def lock(self, tenant: str, dedup_key: str) -> DedupState | None:
        """The (tenant, key) window, locked until the unit of work ends (None: never seen)."""
        ...

    def save(self, tenant: str, dedup_key: str, state: DedupState, *, new: bool) -> None:
        """Raises ConcurrentInsert when `new` and another transaction created the row first."""
        ...

    def forget_before(self, cutoff: datetime) -> int:
        """Drops the windows opened before `cutoff`; returns how many."""
        ...


class RouteRepository(Protocol):
    def add(self, route: Route, *, secret: str | None, create_time: datetime) -> None: ...

    def get(self, route_id: str) -> StoredRoute | None: ...

    def all(self) -> list[StoredRoute]: ...

    def list(self, *, tenant: str, limit: int, after_id: str) -> list[StoredRoute]:
        """By route id; every route when `tenant` is empty."""
        ...

    def remove(self, route_id: str) -> None: ...

    def follow_chat_migration(self, route_id: str, new_chat: str) -> None:
        """Telegram moved the chat (a group became a supergroup): the route and its pending deliveries follow."""
        ...


class RouteLeaseRepository(Protocol):
    """One sender per route at a time, whatever the number of replicas and workers."""

    def take(self, route_id: str, owner: str, *, now: datetime, until: datetime) -> bool:
        """Takes or renews the lease; False when another owner holds it."""
        ...

    def release(self, route_id: str, owner: str) -> None: ...


class DeliveryRepository(Protocol):
    def add(self, deliveries: Sequence[Delivery]) -> None: ...

    def for_alerts(self, alert_ids: Sequence[str]) -> dict[str, list[Delivery]]:
        """Each alert's deliveries, tenant routes first, then by route id."""
        ...

    def due_routes(self, now: datetime) -> list[str]:
        """Routes with a delivery due now, neither paused nor leased."""
        ...

    def unplanned(self, route_id: str, *, due_by: datetime) -> list[PendingDelivery]:
        """The route's pending deliveries not yet in a message, due by then."""
        ...

    def accepted_since(self, route_id: str, since: datetime) -> int:
        """Deliveries made for the route since then, sent or not (the storm rule counts them)."""
        ...

    def fail_route(self, route_id: str, reason: str) -> list[str]:
        """Every pending delivery and message of the route fails with `reason`; returns the alerts touched."""
        ...

    def held_alerts(self, tenant: str, dedup_prefix: str, now: datetime) -> list[str]:
        """The tenant's alerts whose dedup key starts with `dedup_prefix` and that have a delivery held past `now`
        (pending, not planned into a message yet)."""
        ...

    def drop_held(self, alert_ids: Sequence[str]) -> None:
        """Removes these alerts' deliveries not planned into a message yet (another alert tells them)."""
        ...

    def refresh_summaries(self, alert_ids: Sequence[str]) -> None:
        """Recompute each alert's delivery summary from its deliveries (same transaction as the change)."""
        ...


class DispatchRepository(Protocol):
    def open_for_route(self, route_id: str) -> Dispatch | None:
        """The route's oldest message still pending."""
        ...

    def add(self, dispatch: Dispatch, delivery_ids: Sequence[str]) -> None:
        """Stores the message and puts those deliveries in it."""
        ...

    def pending_alert_ids(self, dispatch_id: str) -> list[str]:
        """The alerts of the message still pending, oldest first."""
        ...

    def record_attempt(self, dispatch: Dispatch) -> None:
        """An attempt starts (see `Dispatch.started`): counted on the message and its pending deliveries."""
        ...

    def settle(self, dispatch: Dispatch, settlement: Settlement, *, now: datetime) -> None:
        """Records what the attempt came to: the message, its pending deliveries, its route's bookkeeping (last
        send, a rate limit's pause) and its alerts' summaries."""
        ...


class TenantSettingsRepository(Protocol):
    def get(self, tenant: str) -> TenantSettings:
        """A tenant never configured has the empty settings."""
        ...

    def save(self, settings: TenantSettings) -> None: ...

    def allow_chat(self, tenant: str, chat_key: str, *, now: datetime) -> None: ...


class NotifierUnitOfWork(UnitOfWork, Protocol):
    alerts: AlertRepository
    dedup: DedupRepository
    routes: RouteRepository
    leases: RouteLeaseRepository
    deliveries: DeliveryRepository
    dispatches: DispatchRepository
    tenant_settings: TenantSettingsRepository

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this unit of work has committed (never if it rolls back)."""
        ...


UnitOfWorkFactory = Callable[[], NotifierUnitOfWork]
