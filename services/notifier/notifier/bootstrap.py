"""The notifier assembled: its application (intake, alerts, routes, tenant settings, event handlers and the
delivery worker over its database, Telegram and webhooks), and its definition for the platform.

Where delivery runs (EE_NOTIFIER_DELIVERY_RUNNER):
* `service` (default): every notifier process runs the delivery loop in a thread, polling every
  `delivery_poll_seconds` and woken at once when an alert is accepted in the same process. It works the
  same with or without Redis and with N replicas (per-route leases keep one sender per chat).
* `rq`: the loop is not started; `jobs.deliver_due` is a periodic job that `emailengine scheduler` enqueues and
  `emailengine worker notifier` runs.

`DEFINITION` is registered as the `notifier` entry point of `emailengine.services` (pyproject.toml).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import grpc
from prometheus_client import CollectorRegistry

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.notifier.v1 import notifier_service_pb2_grpc as pb_grpc
from emailengine.reputation.v1 import events_pb2 as reputation_events
from libs.clock import Clock
from libs.events import Subscriptions
from libs.jobs import PeriodicJob
from libs.outbound import GuardedClient
from libs.runtime import Runtime, ServiceDefinition
from notifier import jobs
from notifier.adapters.telegram import TelegramBotClient
from notifier.adapters.unit_of_work import SqlNotifierUnitOfWork
from notifier.adapters.webhook import USER_AGENT, WebhookDestinations, WebhookSender
from notifier.app.alerts import AlertUseCases
from notifier.app.delivery import DeliveryLoop, DeliveryWorker, TelegramSender
from notifier.app.delivery import WebhookSender as WebhookPort
from notifier.app.events import EventAlerts
from notifier.app.intake import Accepted, AlertIntake
from notifier.app.metrics import NotifierMetrics
from notifier.app.routes import DestinationCheck, RouteUseCases
from notifier.app.tenant_settings import TenantSettingsUseCases
from notifier.app.unit_of_work import UnitOfWorkFactory
from notifier.config import NotifierConfig, TelegramSettings, load_config
from notifier.domain.alert import Alert
from notifier.server import NotifierServicer

SERVICE = "notifier"
UPKEEP_EVERY = timedelta(minutes=10)


@dataclass
class Notifier:
    config: NotifierConfig
    unit_of_work: UnitOfWorkFactory
    metrics: NotifierMetrics
    intake: AlertIntake
    alerts: AlertUseCases
    routes: RouteUseCases
    tenants: TenantSettingsUseCases
    events: EventAlerts
    delivery: DeliveryWorker
    loop: DeliveryLoop
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        self.loop.close()
        self.delivery.close()
        for close in self.closers:
            close()


def build_notifier(
    unit_of_work: UnitOfWorkFactory,
    clock: Clock,
    config: NotifierConfig,
    *,
    telegram: TelegramSender | None,
    webhook: WebhookPort,
    destinations: DestinationCheck,
    send_deadline: timedelta,
    registry: CollectorRegistry | None = None,
    random_unit: Callable[[], float] = random.random,
) -> Notifier:
    """The application over its ports; `build` gives it the real ones, tests their own."""
    settings = config.notifier
    metrics = NotifierMetrics(registry)
    worker = DeliveryWorker(
        unit_of_work,
        clock,
        telegram=telegram,
        webhook=webhook,
        retry=settings.retry_policy(),
        storm=settings.storm_policy(),
        lease=timedelta(seconds=settings.lease_seconds),
        max_parts=settings.telegram_max_parts,
        concurrency=settings.delivery_concurrency,
        send_deadline=send_deadline,
        metrics=metrics,
        random_unit=random_unit,
    )

    def count(result: Accepted, alert: Alert) -> None:
        metrics.alerts.labels(alert.source, "accepted" if result.accepted else "suppressed").inc()

    wakeup = threading.Event()  # an alert accepted here wakes the delivery loop at once
    intake = AlertIntake(
        unit_of_work,
        clock,
        settings.dedup_policy(),
        telegram_enabled=telegram is not None,
        on_accepted=wakeup.set,
        on_counted=count,
    )
    loop = DeliveryLoop(
        worker,
        intake.forget_ended_windows,
        clock,
        wakeup=wakeup,
        poll=timedelta(seconds=settings.delivery_poll_seconds),
        upkeep_every=UPKEEP_EVERY,
    )
    return Notifier(
        config=config,
        unit_of_work=unit_of_work,
        metrics=metrics,
        intake=intake,
        alerts=AlertUseCases(unit_of_work, clock, intake),
        routes=RouteUseCases(unit_of_work, clock, destinations),
        tenants=TenantSettingsUseCases(unit_of_work, clock),
        events=EventAlerts(intake),
        delivery=worker,
        loop=loop,
    )


def telegram_client(settings: TelegramSettings) -> TelegramBotClient | None:
    """The shared bot's client; None when no token is configured (Telegram disabled)."""
    if settings.bot_token is None:
        return None
    return TelegramBotClient(
        settings.bot_token.get_secret_value(), api_base=settings.api_base, timeout=settings.timeout_seconds
    )


def build(rt: Runtime) -> Notifier:
    config: NotifierConfig = rt.config
    policy = rt.settings.outbound_policy()
    outbound = GuardedClient(policy, user_agent=USER_AGENT)  # one per process: every webhook goes through it
    webhook = WebhookSender(outbound, deadline_seconds=config.notifier.webhook_timeout_seconds)
    telegram = telegram_client(config.telegram)

    def unit_of_work() -> SqlNotifierUnitOfWork:
        return SqlNotifierUnitOfWork(rt.db, source=SERVICE, clock=rt.clock)

    app = build_notifier(
        unit_of_work,
        rt.clock,
        config,
        telegram=telegram,
        webhook=webhook,
        destinations=WebhookDestinations(policy),
        send_deadline=timedelta(seconds=max(webhook.deadline_seconds, config.telegram.timeout_seconds)),
        registry=rt.metrics,
    )
    app.closers.append(outbound.close)
    if telegram is not None:
        app.closers.append(telegram.close)
    rt.on_stop.append(app.close)
    return app


def add_servicers(app: Notifier, server: grpc.Server) -> None:
    pb_grpc.add_NotifierServiceServicer_to_server(NotifierServicer(app), server)


def subscriptions(app: Notifier) -> Subscriptions:
    return Subscriptions(
        unit_of_work=app.unit_of_work,  # type: ignore[arg-type]
        handlers={
            reputation_events.IpListingChanged: app.events.on_ip_listing_changed,
            ippool_events.IpStateChanged: app.events.on_ip_state_changed,
            reputation_events.ZoneHealthChanged: app.events.on_zone_health_changed,
            reputation_events.DomainCheckChanged: app.events.on_domain_check_changed,
        },
    )


def start(app: Notifier) -> None:
    if app.config.notifier.delivery_runner == "service":
        app.loop.start()


def periodic_jobs(config: NotifierConfig) -> list[PeriodicJob]:
    settings = config.notifier
    if settings.delivery_runner != "rq":
        return []
    return [
        PeriodicJob("notifier-deliver", jobs.deliver_due, timedelta(seconds=max(1.0, settings.delivery_poll_seconds))),
        PeriodicJob("notifier-prune-dedup", jobs.prune_dedup, UPKEEP_EVERY),
    ]


DEFINITION = ServiceDefinition(
    name=SERVICE,
    grpc_service="emailengine.notifier.v1.NotifierService",
    migrations=Path(__file__).parent / "adapters" / "migrations",
    build=build,
    add_servicers=add_servicers,
    load_config=load_config,
    subscriptions=subscriptions,
    periodic_jobs=periodic_jobs,
    start=start,
)
