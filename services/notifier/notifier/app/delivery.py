"""The delivery job: sends what the outbox holds, at least once, with backoff; never loses an alert.

One pass (`deliver_once`) finds the routes with deliveries due, takes a short lease on each (so one worker
at a time sends to a chat, whatever the number of replicas or RQ workers), and for each route:

1. resumes its open dispatch when its retry is due (the same message: same alerts, the parts already in
   the chat are not sent again), or
2. plans the next one with the storm rule (one alert alone, or a storm's alerts together in one digest,
   spaced by `min_spacing` per route), records it, then sends it.

Answers are classified by the adapters and turned into retry decisions by the domain (RetryPolicy):
a 429 pauses *every* Telegram route until `retry_after` has passed (Telegram counts per bot too, and a
client that comes back early is limited again); 5xx, timeouts and network errors back off exponentially
up to `retry_max_delay_seconds`; permanent answers (400 bad formatting after the plain-text fallback,
chat not found, 401, 403) mark the deliveries FAILED with the reason, counted and logged, not retried.
A group that became a supergroup is followed: the route's chat id is updated and the message resent once.

A process killed mid-send leaves its lease to expire (`lease_seconds`); the delivery is then sent again
by whichever worker comes next: at least once, never lost.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.orm import Session

from libs.clock import Clock
from libs.db import Database
from notifier.adapters.tables import alerts, deliveries, dispatches, routes
from notifier.adapters.telegram import PartsResult, TelegramBotClient
from notifier.adapters.webhook import WebhookSecret, WebhookSender, WebhookTarget, safe_origin
from notifier.app.intake import TELEGRAM_DISABLED
from notifier.app.records import alert_from_row, refresh_alerts, route_from_row
from notifier.domain.alert import Alert
from notifier.domain.delivery import DeliveryResult, Outcome, Reason
from notifier.domain.retry import RetryAction, RetryPolicy, decide_retry
from notifier.domain.routing import Channel, Route
from notifier.domain.status import DeliveryStatus
from notifier.domain.storm import StormPolicy, plan_dispatch
from notifier.domain.telegram_text import render_alert_parts

log = logging.getLogger(__name__)

PENDING, DELIVERED, FAILED = DeliveryStatus.PENDING.value, DeliveryStatus.DELIVERED.value, DeliveryStatus.FAILED.value
MAX_MESSAGES_PER_LEASE = 20


@dataclass(frozen=True)
class _Item:
    """A pending delivery as the storm rule sees it."""

    delivery_id: str
    alert_id: str
    accepted_at: datetime
    silent: bool


@dataclass(frozen=True)
class _Send:
    """Everything one send needs, read in one transaction."""

    dispatch_id: str
    route: Route
    secret: str | None
    alerts: tuple[Alert, ...]
    alert_ids: tuple[str, ...]
    parts_sent: int
    attempts: int
    first_attempt_at: datetime | None
    silent: bool


@dataclass(frozen=True)
class _Outcome:
    result: DeliveryResult
    parts_sent: int
    note: str = ""
    disabled: bool = False  # the channel is not configured (any more): the deliveries become DISABLED


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry | None):
        registry = registry or CollectorRegistry()
        self.messages = Counter(
            "notifier_messages_total",
            "Messages (single alerts or storm digests) by channel and outcome",
            ["channel", "outcome"],
            registry=registry,
        )
        self.failures = Counter(
            "notifier_delivery_failures_total",
            "Deliveries given up for good, by channel and reason",
            ["channel", "reason"],
            registry=registry,
        )
        self.alerts = Counter(
            "notifier_alerts_total", "Alerts received, by source and verdict", ["source", "verdict"], registry=registry
        )


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        telegram: TelegramBotClient | None,
        webhook: WebhookSender,
        retry: RetryPolicy,
        storm: StormPolicy,
        lease: timedelta = timedelta(seconds=60),
        max_parts: int = 4,
        concurrency: int = 8,
        metrics: DeliveryMetrics | None = None,
        random_unit: Callable[[], float] = random.random,
    ):
        self._db = db
        self._clock = clock
        self._telegram = telegram
        self._webhook = webhook
        self._retry = retry
        self._storm = storm
        self._lease = lease
        self._max_parts = max_parts
        self._metrics = metrics or DeliveryMetrics(None)
        self._random = random_unit
        self._owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._pool = (
            ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="notifier-send") if concurrency > 1 else None
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # -- one pass ---------------------------------------------------------------------------------

    def deliver_once(self) -> int:
        """Serves every route with something due. Returns the number of messages attempted."""
        with self._lock:  # one pass at a time per process (the periodic job may overlap a kick)
            route_ids = self._due_routes(self._clock.now())
            if not route_ids:
                return 0
            if self._pool is None or len(route_ids) == 1:
                return sum(self._serve_route(r) for r in route_ids)
            return sum(self._pool.map(self._serve_route, route_ids))

    def _due_routes(self, now: datetime) -> list[str]:
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
        with self._db.transaction() as session:
            return sorted(r.route_id for r in session.execute(query).all())

    # -- one route --------------------------------------------------------------------------------

    def _take_lease(self, route_id: str) -> bool:
        now = self._clock.now()
        with self._db.transaction() as session:
            taken = session.execute(
                routes.update()
                .where(
                    routes.c.route_id == route_id,
                    sa.or_(
                        routes.c.lease_until.is_(None), routes.c.lease_until < now, routes.c.lease_owner == self._owner
                    ),
                )
                .values(lease_owner=self._owner, lease_until=now + self._lease)
            )
            return taken.rowcount == 1

    def _release_lease(self, route_id: str) -> None:
        with self._db.transaction() as session:
            session.execute(
                routes.update()
                .where(routes.c.route_id == route_id, routes.c.lease_owner == self._owner)
                .values(lease_owner=None, lease_until=None)
            )

    def _serve_route(self, route_id: str) -> int:
        if not self._take_lease(route_id):
            return 0
        sent = 0
        try:
            for _ in range(MAX_MESSAGES_PER_LEASE):
                send = self._next_send(route_id)
                if send is None:
                    break
                self._record(send, self._send(send))
                sent += 1
                if not self._take_lease(route_id):  # renew; lost it (expired under a slow send): stop here
                    return sent
        except Exception:
            log.exception("delivery pass failed for a route; retried next pass", extra={"route_id": route_id})
        finally:
            self._release_lease(route_id)
        return sent

    def _next_send(self, route_id: str) -> _Send | None:
        now = self._clock.now()
        with self._db.transaction() as session:
            route_row = session.execute(sa.select(routes).where(routes.c.route_id == route_id)).first()
            if route_row is None or (route_row.paused_until is not None and route_row.paused_until > now):
                return None
            open_dispatch = session.execute(
                sa.select(dispatches)
                .where(dispatches.c.route_id == route_id, dispatches.c.state == PENDING)
                .order_by(dispatches.c.created_at)
                .limit(1)
            ).first()
            if open_dispatch is not None:
                if open_dispatch.next_attempt_at > now:
                    return None
                members = session.execute(
                    sa.select(deliveries.c.alert_id)
                    .where(deliveries.c.dispatch_id == open_dispatch.dispatch_id, deliveries.c.state == PENDING)
                    .order_by(deliveries.c.accepted_at, deliveries.c.delivery_id)
                ).all()
                if not members:  # its deliveries were closed elsewhere (route deleted): nothing left to send
                    session.execute(
                        dispatches.update()
                        .where(dispatches.c.dispatch_id == open_dispatch.dispatch_id)
                        .values(state=FAILED, last_error="nothing left to send")
                    )
                    return None
                alert_ids = [m.alert_id for m in members]
                dispatch = open_dispatch
            else:
                dispatch, alert_ids = self._plan(session, route_row, now)
                if dispatch is None:
                    return None
            rows = {
                r.alert_id: r for r in session.execute(sa.select(alerts).where(alerts.c.alert_id.in_(alert_ids))).all()
            }
            return _Send(
                dispatch_id=dispatch.dispatch_id,
                route=route_from_row(route_row),
                secret=route_row.secret,
                alerts=tuple(alert_from_row(rows[i]) for i in alert_ids),
                alert_ids=tuple(alert_ids),
                parts_sent=dispatch.parts_sent,
                attempts=dispatch.attempts,
                first_attempt_at=dispatch.first_attempt_at,
                silent=dispatch.silent,
            )

    def _plan(self, session: Session, route_row: sa.Row, now: datetime) -> tuple[sa.Row | None, list[str]]:
        route_id = route_row.route_id
        pending = [
            _Item(r.delivery_id, r.alert_id, r.accepted_at, r.silent)
            for r in session.execute(
                sa.select(deliveries).where(
                    deliveries.c.route_id == route_id,
                    deliveries.c.state == PENDING,
                    deliveries.c.dispatch_id.is_(None),
                    deliveries.c.deliver_at <= now,
                )
            ).all()
        ]
        if not pending:
            return None, []
        in_window = session.execute(
            sa.select(sa.func.count())
            .select_from(deliveries)
            .where(deliveries.c.route_id == route_id, deliveries.c.accepted_at >= self._storm.window_start(now))
        ).scalar_one()
        plan = plan_dispatch(
            pending, accepted_in_window=in_window, last_sent_at=route_row.last_sent_at, now=now, policy=self._storm
        )
        if not plan.batch:
            return None, []
        dispatch_id = str(uuid.uuid4())
        digest = len(plan.batch) > 1
        session.execute(
            dispatches.insert().values(
                dispatch_id=dispatch_id,
                route_id=route_id,
                state=PENDING,
                digest=digest,
                silent=all(item.silent for item in plan.batch),
                parts_sent=0,
                attempts=0,
                created_at=now,
                first_attempt_at=None,
                next_attempt_at=now,
                last_error="",
                delivered_at=None,
            )
        )
        session.execute(
            deliveries.update()
            .where(deliveries.c.delivery_id.in_([item.delivery_id for item in plan.batch]))
            .values(dispatch_id=dispatch_id, digest=digest)
        )
        row = session.execute(sa.select(dispatches).where(dispatches.c.dispatch_id == dispatch_id)).one()
        return row, [item.alert_id for item in plan.batch]

    # -- sending ----------------------------------------------------------------------------------

    def _send(self, send: _Send) -> _Outcome:
        try:
            if send.route.channel is Channel.TELEGRAM:
                return self._send_telegram(send)
            return self._send_webhook(send)
        except Exception as exc:  # a bug here must not retry forever in a tight loop
            log.exception("message could not be built or sent", extra={"route_id": send.route.route_id})
            return _Outcome(
                DeliveryResult(Outcome.PERMANENT, Reason.REJECTED, description=f"internal error: {type(exc).__name__}"),
                send.parts_sent,
            )

    def _send_telegram(self, send: _Send) -> _Outcome:
        if self._telegram is None:
            result = DeliveryResult(Outcome.PERMANENT, Reason.REJECTED, description=TELEGRAM_DISABLED)
            return _Outcome(result, 0, disabled=True)
        parts = render_alert_parts(list(send.alerts), max_parts=self._max_parts)
        already = min(send.parts_sent, len(parts) - 1)
        result: PartsResult = self._telegram.send_parts(
            send.route.target, parts, already_sent=already, silent=send.silent
        )
        note = "sent as plain text after a formatting error" if result.fell_back_to_plain else ""
        migrated = result.last.migrate_to_chat_id
        if result.last.reason is Reason.CHAT_MIGRATED and migrated is not None:
            self._follow_migration(send.route.route_id, migrated)
            log.warning(
                "telegram group became a supergroup: route updated",
                extra={"route_id": send.route.route_id, "new_chat_id": migrated},
            )
            result = self._telegram.send_parts(migrated, parts, already_sent=result.sent, silent=send.silent)
            note = f"chat migrated to {migrated}; route updated"
        return _Outcome(result.last, result.sent if not result.complete else len(parts), note)

    def _follow_migration(self, route_id: str, new_chat_id: int) -> None:
        with self._db.transaction() as session:
            session.execute(routes.update().where(routes.c.route_id == route_id).values(target=str(new_chat_id)))
            session.execute(
                deliveries.update()
                .where(deliveries.c.route_id == route_id, deliveries.c.state == PENDING)
                .values(destination=str(new_chat_id))
            )

    def _send_webhook(self, send: _Send) -> _Outcome:
        if not send.secret:
            return _Outcome(
                DeliveryResult(Outcome.PERMANENT, Reason.REJECTED, description="webhook route has no secret"), 0
            )
        target = WebhookTarget(send.route.target, WebhookSecret(send.secret))
        result = self._webhook.send_alerts(
            target, list(send.alerts), delivery_id=send.dispatch_id, now=self._clock.now()
        )
        return _Outcome(result, 1 if result.delivered else 0)

    # -- recording --------------------------------------------------------------------------------

    def _record(self, send: _Send, outcome: _Outcome) -> None:
        now = self._clock.now()
        result = outcome.result
        attempt = send.attempts + 1
        first = send.first_attempt_at or now
        channel = send.route.channel.value
        members = deliveries.c.dispatch_id == send.dispatch_id
        with self._db.transaction() as session:
            this_dispatch = dispatches.update().where(dispatches.c.dispatch_id == send.dispatch_id)
            if result.delivered:
                session.execute(
                    this_dispatch.values(
                        state=DELIVERED,
                        parts_sent=outcome.parts_sent,
                        attempts=attempt,
                        first_attempt_at=first,
                        delivered_at=now,
                        last_error=outcome.note,
                    )
                )
                session.execute(
                    deliveries.update()
                    .where(members, deliveries.c.state == PENDING)
                    .values(
                        state=DELIVERED,
                        attempts=deliveries.c.attempts + 1,
                        delivered_at=now,
                        next_attempt_at=None,
                        last_error=outcome.note,
                    )
                )
                session.execute(
                    routes.update().where(routes.c.route_id == send.route.route_id).values(last_sent_at=now)
                )
                self._metrics.messages.labels(channel, "delivered").inc()
            else:
                decision = decide_retry(
                    result,
                    attempt=attempt,
                    first_attempt_at=first,
                    now=now,
                    random_unit=self._random(),
                    policy=self._retry,
                )
                error = _describe(result)
                if decision.action is RetryAction.RETRY:
                    assert decision.retry_at is not None
                    session.execute(
                        this_dispatch.values(
                            parts_sent=outcome.parts_sent,
                            attempts=attempt,
                            first_attempt_at=first,
                            next_attempt_at=decision.retry_at,
                            last_error=error,
                        )
                    )
                    session.execute(
                        deliveries.update()
                        .where(members, deliveries.c.state == PENDING)
                        .values(attempts=deliveries.c.attempts + 1, next_attempt_at=decision.retry_at, last_error=error)
                    )
                    if result.outcome is Outcome.RATE_LIMITED:
                        self._pause(session, send.route, decision.retry_at)
                    if outcome.parts_sent > send.parts_sent:
                        session.execute(
                            routes.update().where(routes.c.route_id == send.route.route_id).values(last_sent_at=now)
                        )
                    self._metrics.messages.labels(channel, "retry").inc()
                    log.info(
                        "delivery will be retried",
                        extra={
                            "route_id": send.route.route_id,
                            "attempt": attempt,
                            "error": error,
                            "retry_at": decision.retry_at.isoformat(),
                        },
                    )
                elif outcome.disabled:
                    session.execute(this_dispatch.values(state=FAILED, last_error=TELEGRAM_DISABLED))
                    session.execute(
                        deliveries.update()
                        .where(members, deliveries.c.state == PENDING)
                        .values(state=DeliveryStatus.DISABLED.value, next_attempt_at=None, last_error=TELEGRAM_DISABLED)
                    )
                else:
                    why = error if decision.why.startswith(result.reason.value) else f"{decision.why} ({error})"
                    session.execute(
                        this_dispatch.values(
                            state=FAILED,
                            parts_sent=outcome.parts_sent,
                            attempts=attempt,
                            first_attempt_at=first,
                            last_error=why,
                        )
                    )
                    session.execute(
                        deliveries.update()
                        .where(members, deliveries.c.state == PENDING)
                        .values(state=FAILED, attempts=deliveries.c.attempts + 1, next_attempt_at=None, last_error=why)
                    )
                    self._metrics.messages.labels(channel, "failed").inc()
                    self._metrics.failures.labels(channel, result.reason.value).inc(len(send.alert_ids))
                    log.warning(
                        "delivery failed for good",
                        extra={
                            "route_id": send.route.route_id,
                            "destination": _safe_destination(send.route),
                            "reason": result.reason.value,
                            "error": why,
                            "alerts": len(send.alert_ids),
                        },
                    )
            refresh_alerts(session, send.alert_ids)

    def _pause(self, session: Session, route: Route, until: datetime) -> None:
        """429: the whole bot waits for Telegram (every Telegram route); a webhook only for itself."""
        if route.channel is Channel.TELEGRAM:
            scope = routes.c.channel == Channel.TELEGRAM.value
        else:
            scope = routes.c.route_id == route.route_id
        session.execute(
            routes.update()
            .where(scope, sa.or_(routes.c.paused_until.is_(None), routes.c.paused_until < until))
            .values(paused_until=until)
        )


def _describe(result: DeliveryResult) -> str:
    status = f"HTTP {result.status_code} " if result.status_code else ""
    text = f"{status}{result.reason.value}"
    if result.description:
        text += f": {result.description}"
    if result.retry_after is not None:
        text += f" (retry_after {result.retry_after:g} s)"
    return text[:1000]


def _safe_destination(route: Route) -> str:
    return route.destination[1] if route.channel is Channel.TELEGRAM else safe_origin(route.target)
