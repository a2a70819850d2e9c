"""The notifier's storage port and peers in memory, so its use cases run in milliseconds with no I/O.

`FakeNotifierUnitOfWork` gives `tests.fakes.FakeUnitOfWork` the notifier's repositories; like the SQL ones they
keep nothing that was not committed. `ScriptedTelegram` and `ScriptedWebhooks` answer what a test scripts and
record what was sent; `notifier_over_fakes` assembles the application over them, as bootstrap.build does over
the real adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from libs.clock import FakeClock
from libs.pagination import TimePosition
from notifier.bootstrap import Notifier, build_notifier
from notifier.config import NotifierConfig, NotifierSettings, TelegramSettings
from notifier.domain.alert import Alert
from notifier.domain.dedup import DedupState
from notifier.domain.delivery import DeliveryResult, Outcome, PartsResult, Reason
from notifier.domain.outbox import Delivery, Dispatch, PendingDelivery, StoredAlert, StoredRoute
from notifier.domain.routing import Channel, Route, TenantSettings
from notifier.domain.settlement import Settled, Settlement
from notifier.domain.status import DeliveryStatus, summarize
from notifier.domain.telegram_text import MessagePart
from tests.fakes import FakeStore, FakeUnitOfWork

PENDING = DeliveryStatus.PENDING
DELIVERED = DeliveryResult(Outcome.DELIVERED, Reason.OK, 200, message_id=1)


class FakeAlerts:
    def __init__(self, tables: dict[str, Any]):
        self.rows: dict[str, StoredAlert] = tables.setdefault("alerts", {})

    def add(self, alert: StoredAlert) -> None:
        self.rows[alert.alert_id] = alert

    def get(self, alert_id: str) -> StoredAlert | None:
        return self.rows.get(alert_id)

    def get_many(self, alert_ids: Sequence[str]) -> list[StoredAlert]:
        return [self.rows[i] for i in alert_ids if i in self.rows]

    def list(self, *, tenant: str | None, limit: int, after: TimePosition | None) -> list[StoredAlert]:
        found = sorted(self.rows.values(), key=lambda a: (a.create_time, a.alert_id), reverse=True)
        found = [a for a in found if tenant is None or a.tenant == tenant]
        if after is not None:
            found = [a for a in found if (a.create_time, a.alert_id) < (after.time, after.id)]
        return found[:limit]

    def mark_told_by(self, alert_ids: Sequence[str], told_by: str) -> None:
        for alert_id in set(alert_ids):
            self.rows[alert_id] = replace(self.rows[alert_id], duplicate_of=told_by)
            self.count_suppressed(told_by)

    def count_suppressed(self, alert_id: str) -> None:
        self.rows[alert_id] = replace(self.rows[alert_id], suppressed_count=self.rows[alert_id].suppressed_count + 1)


class FakeDedup:
    def __init__(self, tables: dict[str, Any]):
        self.rows: dict[tuple[str, str], DedupState] = tables.setdefault("dedup", {})

    def lock(self, tenant: str, dedup_key: str) -> DedupState | None:
        return self.rows.get((tenant, dedup_key))

    def save(self, tenant: str, dedup_key: str, state: DedupState, *, new: bool) -> None:
        self.rows[(tenant, dedup_key)] = state

    def forget_before(self, cutoff: datetime) -> int:
        gone = [key for key, state in self.rows.items() if state.window_started_at < cutoff]
        for key in gone:
            del self.rows[key]
        return len(gone)


class FakeRoutes:
    def __init__(self, tables: dict[str, Any]):
        self.rows: dict[str, StoredRoute] = tables.setdefault("routes", {})
        self._deliveries: dict[str, Delivery] = tables.setdefault("deliveries", {})

    def add(self, route: Route, *, secret: str | None, create_time: datetime) -> None:
        self.rows[route.route_id] = StoredRoute(
            route.route_id, route.tenant, route.channel.value, route.target, route, "", secret, create_time
        )

    def get(self, route_id: str) -> StoredRoute | None:
        return self.rows.get(route_id)

    def all(self) -> list[StoredRoute]:
        return [self.rows[k] for k in sorted(self.rows)]

    def list(self, *, tenant: str, limit: int, after_id: str) -> list[StoredRoute]:
        return [r for r in self.all() if (not tenant or r.tenant == tenant) and r.route_id > after_id][:limit]

    def remove(self, route_id: str) -> None:
        self.rows.pop(route_id, None)

    def follow_chat_migration(self, route_id: str, new_chat: str) -> None:
        stored = self.rows[route_id]
        moved = replace(stored.route, target=new_chat) if stored.route is not None else None
        self.rows[route_id] = replace(stored, target=new_chat, route=moved)
        for key, d in self._deliveries.items():
            if d.route_id == route_id and d.state is PENDING:
                self._deliveries[key] = replace(d, destination=new_chat)


class FakeLeases:
    def __init__(self, tables: dict[str, Any]):
        self.rows: dict[str, tuple[str, datetime]] = tables.setdefault("leases", {})

    def take(self, route_id: str, owner: str, *, now: datetime, until: datetime) -> bool:
        held = self.rows.get(route_id)
        if held is not None and held[0] != owner and held[1] >= now:
            return False
        self.rows[route_id] = (owner, until)
        return True

    def release(self, route_id: str, owner: str) -> None:
        if self.rows.get(route_id, ("", None))[0] == owner:
            del self.rows[route_id]


class FakeDeliveries:
    def __init__(self, tables: dict[str, Any]):
        self.rows: dict[str, Delivery] = tables.setdefault("deliveries", {})
        self._tables = tables

    def add(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            self.rows[d.delivery_id] = d

    def for_alerts(self, alert_ids: Sequence[str]) -> dict[str, list[Delivery]]:
        found: dict[str, list[Delivery]] = {i: [] for i in alert_ids}
        for d in sorted(self.rows.values(), key=lambda d: (d.route_tenant_id is None, d.route_id)):
            if d.alert_id in found:
                found[d.alert_id].append(d)
        return found

    def due_routes(self, now: datetime) -> list[str]:
        routes: dict[str, StoredRoute] = self._tables.get("routes", {})
        leases: dict[str, tuple[str, datetime]] = self._tables.get("leases", {})
        due = set()
        for d in self.rows.values():
            route = routes.get(d.route_id)
            if d.state is not PENDING or d.deliver_at > now or route is None or route.paused(now):
                continue
            if d.next_attempt_at is not None and d.next_attempt_at > now:
                continue
            if d.route_id in leases and leases[d.route_id][1] >= now:
                continue
            due.add(d.route_id)
        return sorted(due)

    def unplanned(self, route_id: str, *, due_by: datetime) -> list[PendingDelivery]:
        return [
            PendingDelivery(d.delivery_id, d.alert_id, d.accepted_at, d.silent)
            for d in self.rows.values()
            if d.route_id == route_id and d.state is PENDING and d.dispatch_id is None and d.deliver_at <= due_by
        ]

    def accepted_since(self, route_id: str, since: datetime) -> int:
        return sum(1 for d in self.rows.values() if d.route_id == route_id and d.accepted_at >= since)

    def fail_route(self, route_id: str, reason: str) -> list[str]:
        dispatches: dict[str, Dispatch] = self._tables.setdefault("dispatches", {})
        for key, dispatch in dispatches.items():
            if dispatch.route_id == route_id and dispatch.state is PENDING:
                dispatches[key] = replace(dispatch, state=DeliveryStatus.FAILED, last_error=reason)
        touched = set()
        for key, d in self.rows.items():
            if d.route_id == route_id and d.state is PENDING:
                self.rows[key] = replace(d, state=DeliveryStatus.FAILED, last_error=reason, next_attempt_at=None)
                touched.add(d.alert_id)
        return sorted(touched)

    def held_alerts(self, tenant: str, dedup_prefix: str, now: datetime) -> list[str]:
        alerts: dict[str, StoredAlert] = self._tables.setdefault("alerts", {})
        return sorted(
            {
                d.alert_id
                for d in self.rows.values()
                if d.state is PENDING
                and d.dispatch_id is None
                and d.deliver_at > now
                and alerts[d.alert_id].tenant == tenant
                and alerts[d.alert_id].alert.dedup_key.startswith(dedup_prefix)
            }
        )

    def drop_held(self, alert_ids: Sequence[str]) -> None:
        for key, d in list(self.rows.items()):
            if d.alert_id in alert_ids and d.state is PENDING and d.dispatch_id is None:
                del self.rows[key]

    def refresh_summaries(self, alert_ids: Sequence[str]) -> None:
        alerts: dict[str, StoredAlert] = self._tables.setdefault("alerts", {})
        for alert_id in set(alert_ids):
            facts = [d.facts for d in self.rows.values() if d.alert_id == alert_id]
            stored = alerts[alert_id]
            alerts[alert_id] = replace(stored, summary=summarize(facts, suppressed=stored.duplicate_of is not None))


_DISPATCH_STATE = {
    Settled.DELIVERED: DeliveryStatus.DELIVERED,
    Settled.RETRY: DeliveryStatus.PENDING,
    Settled.FAILED: DeliveryStatus.FAILED,
    Settled.DISABLED: DeliveryStatus.FAILED,
}


class FakeDispatches:
    def __init__(self, tables: dict[str, Any], deliveries: FakeDeliveries):
        self.rows: dict[str, Dispatch] = tables.setdefault("dispatches", {})
        self._tables = tables
        self._deliveries = deliveries

    def _members(self, dispatch_id: str) -> list[Delivery]:
        return sorted(
            (d for d in self._deliveries.rows.values() if d.dispatch_id == dispatch_id and d.state is PENDING),
            key=lambda d: (d.accepted_at, d.delivery_id),
        )

    def open_for_route(self, route_id: str) -> Dispatch | None:
        found = [d for d in self.rows.values() if d.route_id == route_id and d.state is PENDING]
        return min(found, key=lambda d: d.created_at) if found else None

    def add(self, dispatch: Dispatch, delivery_ids: Sequence[str]) -> None:
        self.rows[dispatch.dispatch_id] = dispatch
        for delivery_id in delivery_ids:
            d = self._deliveries.rows[delivery_id]
            self._deliveries.rows[delivery_id] = replace(d, dispatch_id=dispatch.dispatch_id, digest=dispatch.digest)

    def pending_alert_ids(self, dispatch_id: str) -> list[str]:
        return [d.alert_id for d in self._members(dispatch_id)]

    def record_attempt(self, dispatch: Dispatch) -> None:
        self.rows[dispatch.dispatch_id] = dispatch
        for d in self._members(dispatch.dispatch_id):
            self._deliveries.rows[d.delivery_id] = replace(
                d, attempts=d.attempts + 1, next_attempt_at=dispatch.next_attempt_at
            )

    def settle(self, dispatch: Dispatch, settlement: Settlement, *, now: datetime) -> None:
        members = self._members(dispatch.dispatch_id)
        delivered_at = now if settlement.state is Settled.DELIVERED else None
        self.rows[dispatch.dispatch_id] = replace(
            self.rows[dispatch.dispatch_id],
            state=_DISPATCH_STATE[settlement.state],
            parts_sent=settlement.parts_sent,
            last_error=settlement.error,
            next_attempt_at=settlement.retry_at or dispatch.next_attempt_at,
            delivered_at=delivered_at,
        )
        state = DeliveryStatus.DISABLED if settlement.state is Settled.DISABLED else _DISPATCH_STATE[settlement.state]
        for d in members:
            self._deliveries.rows[d.delivery_id] = replace(
                d,
                state=state,
                last_error=settlement.error,
                next_attempt_at=settlement.retry_at,
                delivered_at=delivered_at,
            )
        routes: dict[str, StoredRoute] = self._tables.setdefault("routes", {})
        if settlement.reached_destination and dispatch.route_id in routes:
            routes[dispatch.route_id] = replace(routes[dispatch.route_id], last_sent_at=now)
        if settlement.pause_until is not None:
            for key, route in routes.items():
                in_scope = (
                    route.channel == Channel.TELEGRAM.value
                    if settlement.pause_every_telegram_route
                    else key == dispatch.route_id
                )
                if in_scope and (route.paused_until is None or route.paused_until < settlement.pause_until):
                    routes[key] = replace(route, paused_until=settlement.pause_until)
        self._deliveries.refresh_summaries([d.alert_id for d in members])


class FakeTenantSettings:
    def __init__(self, tables: dict[str, Any]):
        self.rows: dict[str, TenantSettings] = tables.setdefault("tenant_settings", {})

    def get(self, tenant: str) -> TenantSettings:
        return self.rows.get(tenant, TenantSettings(tenant))

    def save(self, settings: TenantSettings) -> None:
        self.rows[settings.tenant] = settings

    def allow_chat(self, tenant: str, chat_key: str, *, now: datetime) -> None:
        current = self.get(tenant)
        self.rows[tenant] = replace(current, allowed_telegram_chats=current.allowed_telegram_chats | {chat_key})


class FakeNotifierUnitOfWork(FakeUnitOfWork):
    alerts: FakeAlerts
    dedup: FakeDedup
    routes: FakeRoutes
    leases: FakeLeases
    deliveries: FakeDeliveries
    dispatches: FakeDispatches
    tenant_settings: FakeTenantSettings

    def _bind(self, tables: dict[str, Any]) -> None:
        self._committed: list[Callable[[], None]] = []
        self.alerts = FakeAlerts(tables)
        self.dedup = FakeDedup(tables)
        self.routes = FakeRoutes(tables)
        self.leases = FakeLeases(tables)
        self.deliveries = FakeDeliveries(tables)
        self.dispatches = FakeDispatches(tables, self.deliveries)
        self.tenant_settings = FakeTenantSettings(tables)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._committed.append(callback)

    def commit(self) -> None:
        super().commit()
        callbacks, self._committed = self._committed, []
        for callback in callbacks:
            callback()


# -- peers --------------------------------------------------------------------------------------------


@dataclass
class ScriptedTelegram:
    """Answers each sendMessage with the next scripted result (delivered when the script is empty)."""

    answers: list[DeliveryResult] = field(default_factory=list)
    sent: list[tuple[int | str, str, bool]] = field(default_factory=list)  # (chat, text, silent)
    on_send: Callable[[], None] | None = None

    def send_parts(
        self, chat_id: int | str, parts: Sequence[MessagePart], *, already_sent: int = 0, silent: bool = False
    ) -> PartsResult:
        done = already_sent
        last = DELIVERED
        for part in parts[already_sent:]:
            if self.on_send is not None:
                self.on_send()
            last = self.answers.pop(0) if self.answers else DELIVERED
            if not last.delivered:
                break
            self.sent.append((chat_id, part.plain, silent))
            done += 1
        return PartsResult(sent=done, last=last)

    def texts(self, chat: int | str) -> list[str]:
        return [text for to, text, _silent in self.sent if str(to) == str(chat)]


@dataclass
class ScriptedWebhooks:
    answers: list[DeliveryResult] = field(default_factory=list)
    sent: list[tuple[str, tuple[Alert, ...], str]] = field(default_factory=list)  # (url, alerts, delivery id)

    def send_alerts(
        self, url: str, secret: str, alerts: Sequence[Alert], *, delivery_id: str, now: datetime
    ) -> DeliveryResult:
        self.sent.append((url, tuple(alerts), delivery_id))
        return self.answers.pop(0) if self.answers else DELIVERED


class AllowEveryDestination:
    def refusal(self, url: str) -> str | None:
        return None


# Deterministic by default: no spacing, storms only when a test wants them, mid-range jitter.
FAST = {"delivery_concurrency": 1, "min_spacing_seconds": 0, "storm_threshold": 1000}


@dataclass
class FakeNotifier:
    app: Notifier
    store: FakeStore
    clock: FakeClock
    telegram: ScriptedTelegram
    webhooks: ScriptedWebhooks

    def deliver(self) -> int:
        return self.app.delivery.deliver_once()

    def run_for(self, seconds: float, step: float = 0.5) -> None:
        """The delivery job every `step` seconds of fake time."""
        end = self.clock.now() + timedelta(seconds=seconds)
        while self.clock.now() < end:
            self.deliver()
            self.clock.advance(timedelta(seconds=step))
        self.deliver()

    def uow(self) -> FakeNotifierUnitOfWork:
        return FakeNotifierUnitOfWork(self.store)

    def close(self) -> None:
        self.app.close()


def notifier_over_fakes(
    clock: FakeClock | None = None,
    *,
    telegram: bool = True,
    destinations: Any = None,
    **settings: Any,
) -> FakeNotifier:
    store = FakeStore()
    clock = clock or FakeClock()
    bot, hooks = ScriptedTelegram(), ScriptedWebhooks()
    app = build_notifier(
        lambda: FakeNotifierUnitOfWork(store),
        clock,
        NotifierConfig(NotifierSettings(**{**FAST, **settings}), TelegramSettings()),
        telegram=bot if telegram else None,
        webhook=hooks,
        destinations=destinations or AllowEveryDestination(),
        send_deadline=timedelta(seconds=5),
        random_unit=lambda: 0.5,
    )
    return FakeNotifier(app, store, clock, bot, hooks)
