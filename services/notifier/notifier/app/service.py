"""The notifier assembled: intake, routes, reads, the delivery worker and its loop, and the job functions.

Where delivery runs (EE_NOTIFIER_DELIVERY_RUNNER):
* `service` (default): every notifier process runs the delivery loop in a thread, polling every
  `delivery_poll_seconds` and woken at once when an alert is accepted in the same process. It works the
  same with or without Redis and with N replicas (per-route leases keep one sender per chat).
* `rq`: the loop is not started; `deliver_due` is a periodic job (module-level, as RQ needs) that
  `emailengine scheduler` enqueues and `emailengine worker notifier` runs.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from libs.clock import Clock
from libs.db import Database
from notifier.adapters.tables import dedup_states
from notifier.adapters.telegram import TelegramBotClient
from notifier.adapters.webhook import WebhookSender
from notifier.app.alerts import AlertUseCases
from notifier.app.delivery import DeliveryMetrics, DeliveryWorker
from notifier.app.intake import Accepted, AlertIntake
from notifier.app.routes import RouteUseCases
from notifier.config import NotifierSettings
from notifier.domain.alert import Alert

log = logging.getLogger(__name__)

PRUNE_EVERY = timedelta(minutes=10)


class Notifier:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: NotifierSettings,
        *,
        telegram: TelegramBotClient | None,
        webhook: WebhookSender | None = None,
        registry: CollectorRegistry | None = None,
        random_unit: Callable[[], float] = random.random,
    ):
        self.db = db
        self.clock = clock
        self.settings = settings
        self.telegram = telegram
        self.metrics = DeliveryMetrics(registry)
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._webhook = webhook or WebhookSender(timeout=settings.webhook_timeout_seconds)
        self.intake = AlertIntake(
            db,
            clock.now,
            settings.dedup_policy(),
            telegram_enabled=telegram is not None,
            on_accepted=self._kick.set,
            on_counted=self._count,
        )
        self.alerts = AlertUseCases(db, clock.now, self.intake)
        self.routes = RouteUseCases(db, clock.now)
        self.worker = DeliveryWorker(
            db,
            clock,
            telegram=telegram,
            webhook=self._webhook,
            retry=settings.retry_policy(),
            storm=settings.storm_policy(),
            lease=timedelta(seconds=settings.lease_seconds),
            max_parts=settings.telegram_max_parts,
            concurrency=settings.delivery_concurrency,
            metrics=self.metrics,
            random_unit=random_unit,
        )
        self._last_prune = clock.now()

    def _count(self, result: Accepted, alert: Alert) -> None:
        self.metrics.alerts.labels(alert.source, "accepted" if result.accepted else "suppressed").inc()

    # -- the loop ---------------------------------------------------------------------------------

    def start_loop(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="notifier-delivery", daemon=True)
        self._thread.start()
        log.info(
            "delivery loop started",
            extra={
                "poll_seconds": self.settings.delivery_poll_seconds,
                "telegram": "enabled" if self.telegram is not None else "disabled (EE_TELEGRAM_BOT_TOKEN unset)",
            },
        )

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.worker.deliver_once()
                if self.clock.now() - self._last_prune >= PRUNE_EVERY:
                    self.prune()
            except Exception:
                log.exception("delivery pass failed; retrying")
            self._kick.wait(self.settings.delivery_poll_seconds)
            self._kick.clear()

    def prune(self) -> int:
        """Forget dedup windows that ended (they can no longer suppress anything)."""
        now = self.clock.now()
        self._last_prune = now
        cutoff = now - self.settings.dedup_policy().window
        with self.db.transaction() as session:
            gone = session.execute(sa.delete(dedup_states).where(dedup_states.c.window_started_at < cutoff))
        return int(gone.rowcount or 0)

    def close(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self.worker.close()
        self._webhook.close()
        if self.telegram is not None:
            self.telegram.close()
