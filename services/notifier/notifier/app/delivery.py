"""The delivery job: sends what the outbox holds, at least once, with backoff; never loses an alert.

One pass (`deliver_once`) finds the routes with deliveries due and hands each to a bounded pool of senders; a
route already being served (in this process, or under another worker's lease) is left alone. The pass waits
for its routes at most as long as one send may take, then returns: a route that is slow to answer keeps its
sender (and its lease) and only delays itself, never the other routes or the next pass.

For each route, under a short lease (one sender per route, whatever the number of replicas or RQ workers):

1. resume its open dispatch when its retry is due (the same message: same alerts, the parts already in the
   chat are not sent again), or plan the next one with the storm rule (one alert alone, or a storm's alerts
   together in one digest, spaced by `min_spacing` per route);
2. record the attempt (counted, and not due again before the lease ends) *before* sending, so a sender that
   dies mid-send leaves an attempt that counts towards the give-up time instead of a message sent forever;
3. send, then settle: the domain decides what the answer comes to (`domain/settlement.py`: delivered, retried
   at a time, given up) and one repository call records it.

A 429 pauses *every* Telegram route until `retry_after` has passed (Telegram counts per bot too); a group that
became a supergroup is followed: the route's chat id is updated and the message resent once.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from libs.clock import Clock
from notifier.app.intake import route_problem
from notifier.app.metrics import NotifierMetrics
from notifier.app.unit_of_work import UnitOfWorkFactory
from notifier.domain.alert import Alert
from notifier.domain.delivery import DeliveryResult, Outcome, PartsResult, Reason
from notifier.domain.outbox import Dispatch
from notifier.domain.retry import RetryPolicy
from notifier.domain.routing import Channel, Route, chat_key
from notifier.domain.settlement import (
    TELEGRAM_DISABLED,
    Settled,
    Settlement,
    nothing_left,
    settle_abandoned,
    settle_attempt,
)
from notifier.domain.status import DeliveryStatus
from notifier.domain.storm import StormPolicy, plan_dispatch
from notifier.domain.telegram_text import MessagePart, render_alert_parts

log = logging.getLogger(__name__)

MAX_MESSAGES_PER_LEASE = 20


class TelegramSender(Protocol):
    def send_parts(
        self, chat_id: int | str, parts: Sequence[MessagePart], *, already_sent: int = 0, silent: bool = False
    ) -> PartsResult: ...


class WebhookSender(Protocol):
    def send_alerts(
        self, url: str, secret: str, alerts: Sequence[Alert], *, delivery_id: str, now: datetime
    ) -> DeliveryResult: ...


@dataclass(frozen=True)
class Attempt:
    """One message to send now, its attempt already on record."""

    dispatch: Dispatch
    route: Route
    secret: str | None
    alerts: tuple[Alert, ...]


@dataclass(frozen=True)
class SendOutcome:
    result: DeliveryResult
    parts_sent: int
    note: str = ""
    channel_disabled: bool = False  # the channel is not configured (any more): the deliveries become DISABLED


class DeliveryWorker:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        clock: Clock,
        *,
        telegram: TelegramSender | None,
        webhook: WebhookSender,
        retry: RetryPolicy,
        storm: StormPolicy,
        lease: timedelta = timedelta(seconds=60),
        max_parts: int = 4,
        concurrency: int = 8,
        send_deadline: timedelta = timedelta(seconds=10),
        metrics: NotifierMetrics | None = None,
        random_unit: Callable[[], float] = random.random,
    ):
        self._uow = unit_of_work
        self._clock = clock
        self._telegram = telegram
        self._webhook = webhook
        self._retry = retry
        self._storm = storm
        self._lease = lease
        self._max_parts = max_parts
        self._send_deadline = send_deadline
        self._metrics = metrics or NotifierMetrics(None)
        self._random = random_unit
        self._owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="notifier-send")
        self._lock = threading.Lock()
        self._serving: set[str] = set()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- one pass ---------------------------------------------------------------------------------

    def deliver_once(self) -> int:
        """Serves every route with something due; returns the messages attempted by the routes that finished
        within the pass (the others go on in the background and count in no pass)."""
        now = self._clock.now()
        with self._uow() as uow:
            due = uow.deliveries.due_routes(now)
        started: list[Future[int]] = []
        with self._lock:
            if self._closed:
                return 0
            for route_id in due:
                if route_id not in self._serving:
                    self._serving.add(route_id)
                    started.append(self._pool.submit(self._serve_route, route_id))
        if not started:
            return 0
        finished, _ = wait(started, timeout=self._send_deadline.total_seconds())
        return sum(f.result() for f in finished)

    # -- one route --------------------------------------------------------------------------------

    def _serve_route(self, route_id: str) -> int:
        sent = 0
        try:
            if not self._take_lease(route_id):
                return 0
            try:
                for _ in range(MAX_MESSAGES_PER_LEASE):
                    attempt = self._begin(route_id)
                    if attempt is None:
                        break
                    self._settle(attempt, self._send(attempt))
                    sent += 1
                    if not self._take_lease(route_id):  # renew; lost it (expired under a slow send): stop here
                        break
            finally:
                self._release_lease(route_id)
        except Exception:
            log.exception("delivery pass failed for a route; retried next pass", extra={"route_id": route_id})
        finally:
            with self._lock:
                self._serving.discard(route_id)
        return sent

    def _take_lease(self, route_id: str) -> bool:
        now = self._clock.now()
        with self._uow() as uow:
            taken = uow.leases.take(route_id, self._owner, now=now, until=now + self._lease)
            uow.commit()
        return taken

    def _release_lease(self, route_id: str) -> None:
        with self._uow() as uow:
            uow.leases.release(route_id, self._owner)
            uow.commit()

    def _begin(self, route_id: str) -> Attempt | None:
        """The route's next message with its attempt on record, or None when nothing is due."""
        now = self._clock.now()
        with self._uow() as uow:
            stored = uow.routes.get(route_id)
            if stored is None or stored.paused(now):
                return None
            problem = route_problem(stored, uow.tenant_settings.get(stored.tenant) if stored.tenant else None)
            if problem or stored.route is None:
                uow.deliveries.refresh_summaries(uow.deliveries.fail_route(route_id, problem))
                uow.commit()
                log.warning("route cannot be used; its deliveries failed", extra={"route_id": route_id})
                return None
            dispatch = uow.dispatches.open_for_route(route_id)
            if dispatch is not None:
                if dispatch.next_attempt_at > now:
                    return None
                alert_ids = uow.dispatches.pending_alert_ids(dispatch.dispatch_id)
                closed = (
                    nothing_left(dispatch)
                    if not alert_ids
                    else settle_abandoned(dispatch=dispatch, now=now, policy=self._retry)
                )
                if closed is not None:
                    uow.dispatches.settle(dispatch, closed, now=now)
                    uow.commit()
                    self._count(stored.route, dispatch, closed, len(alert_ids))
                    return None
            else:
                pending = uow.deliveries.unplanned(route_id, due_by=now)
                if not pending:
                    return None
                plan = plan_dispatch(
                    pending,
                    accepted_in_window=uow.deliveries.accepted_since(route_id, self._storm.window_start(now)),
                    last_sent_at=stored.last_sent_at,
                    now=now,
                    policy=self._storm,
                )
                if not plan.batch:
                    return None
                dispatch = Dispatch(
                    dispatch_id=str(uuid.uuid4()),
                    route_id=route_id,
                    state=DeliveryStatus.PENDING,
                    digest=plan.is_digest,
                    silent=all(item.silent for item in plan.batch),
                    created_at=now,
                    next_attempt_at=now,
                )
                uow.dispatches.add(dispatch, [item.delivery_id for item in plan.batch])
                alert_ids = [item.alert_id for item in plan.batch]
            started = dispatch.started(now, answer_within=self._lease)
            uow.dispatches.record_attempt(started)
            found = uow.alerts.get_many(alert_ids)
            uow.commit()
        return Attempt(started, stored.route, stored.secret, tuple(a.alert for a in found))

    # -- sending ----------------------------------------------------------------------------------

    def _send(self, attempt: Attempt) -> SendOutcome:
        try:
            if attempt.route.channel is Channel.TELEGRAM:
                return self._send_telegram(attempt)
            return self._send_webhook(attempt)
        except Exception as exc:  # a bug here must not retry forever in a tight loop
            log.exception("message could not be built or sent", extra={"route_id": attempt.route.route_id})
            return SendOutcome(
                DeliveryResult(Outcome.PERMANENT, Reason.REJECTED, description=f"internal error: {type(exc).__name__}"),
                attempt.dispatch.parts_sent,
            )

    def _send_telegram(self, attempt: Attempt) -> SendOutcome:
        if self._telegram is None:
            result = DeliveryResult(Outcome.PERMANENT, Reason.REJECTED, description=TELEGRAM_DISABLED)
            return SendOutcome(result, 0, channel_disabled=True)
        dispatch, route = attempt.dispatch, attempt.route
        parts = render_alert_parts(list(attempt.alerts), max_parts=self._max_parts)
        already = min(dispatch.parts_sent, len(parts) - 1)
        sent: PartsResult = self._telegram.send_parts(route.target, parts, already_sent=already, silent=dispatch.silent)
        note = "sent as plain text after a formatting error" if sent.fell_back_to_plain else ""
        migrated = sent.last.migrate_to_chat_id
        if sent.last.reason is Reason.CHAT_MIGRATED and migrated is not None:
            self._follow_migration(route, str(migrated))
            log.warning(
                "telegram group became a supergroup: route updated",
                extra={"route_id": route.route_id, "new_chat_id": migrated},
            )
            sent = self._telegram.send_parts(migrated, parts, already_sent=sent.sent, silent=dispatch.silent)
            note = f"chat migrated to {migrated}; route updated"
        return SendOutcome(sent.last, len(parts) if sent.complete else sent.sent, note)

    def _follow_migration(self, route: Route, new_chat: str) -> None:
        with self._uow() as uow:
            uow.routes.follow_chat_migration(route.route_id, new_chat)
            if route.tenant is not None:  # the same chat under its new id stays allowed for its tenant
                uow.tenant_settings.allow_chat(route.tenant, chat_key(new_chat), now=self._clock.now())
            uow.commit()

    def _send_webhook(self, attempt: Attempt) -> SendOutcome:
        if not attempt.secret:
            return SendOutcome(
                DeliveryResult(Outcome.PERMANENT, Reason.REJECTED, description="webhook route has no secret"), 0
            )
        result = self._webhook.send_alerts(
            attempt.route.target,
            attempt.secret,
            attempt.alerts,
            delivery_id=attempt.dispatch.dispatch_id,
            now=self._clock.now(),
        )
        return SendOutcome(result, 1 if result.delivered else 0)

    # -- settling ---------------------------------------------------------------------------------

    def _settle(self, attempt: Attempt, outcome: SendOutcome) -> None:
        now = self._clock.now()
        settlement = settle_attempt(
            dispatch=attempt.dispatch,
            channel=attempt.route.channel,
            result=outcome.result,
            parts_sent=outcome.parts_sent,
            note=outcome.note,
            channel_disabled=outcome.channel_disabled,
            now=now,
            random_unit=self._random(),
            policy=self._retry,
        )
        with self._uow() as uow:
            uow.dispatches.settle(attempt.dispatch, settlement, now=now)
            uow.commit()
        self._count(attempt.route, attempt.dispatch, settlement, len(attempt.alerts))

    def _count(self, route: Route | None, dispatch: Dispatch, settlement: Settlement, alerts: int) -> None:
        channel = route.channel.value if route is not None else ""
        extra = {"route_id": dispatch.route_id, "attempt": dispatch.attempts, "error": settlement.error}
        if settlement.state is Settled.DELIVERED:
            self._metrics.messages.labels(channel, "delivered").inc()
        elif settlement.state is Settled.RETRY:
            self._metrics.messages.labels(channel, "retry").inc()
            assert settlement.retry_at is not None
            log.info("delivery will be retried", extra={**extra, "retry_at": settlement.retry_at.isoformat()})
        elif settlement.state is Settled.FAILED:
            reason = settlement.reason.value if settlement.reason is not None else "given_up"
            self._metrics.messages.labels(channel, "failed").inc()
            self._metrics.failures.labels(channel, reason).inc(alerts)
            log.warning("delivery failed for good", extra={**extra, "reason": reason, "alerts": alerts})


class DeliveryLoop:
    """Delivery inside the service process (EE_NOTIFIER_DELIVERY_RUNNER=service): a pass every `poll` (and at
    once when `wakeup` is set: an alert accepted in this process), and the periodic upkeep every `upkeep_every`."""

    def __init__(
        self,
        worker: DeliveryWorker,
        upkeep: Callable[[], object],
        clock: Clock,
        *,
        wakeup: threading.Event,
        poll: timedelta,
        upkeep_every: timedelta,
    ):
        self._worker = worker
        self._upkeep = upkeep
        self._clock = clock
        self._poll = poll
        self._upkeep_every = upkeep_every
        self._kick = wakeup
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="notifier-delivery", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        last_upkeep = self._clock.now()
        while not self._stop.is_set():
            try:
                self._worker.deliver_once()
                if self._clock.now() - last_upkeep >= self._upkeep_every:
                    last_upkeep = self._clock.now()
                    self._upkeep()
            except Exception:
                log.exception("delivery pass failed; retrying")
            self._kick.wait(self._poll.total_seconds())
            self._kick.clear()

    def close(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
