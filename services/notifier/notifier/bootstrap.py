"""The notifier assembled: its application (intake, routes, reads and the delivery worker over the database,
Telegram and webhooks), and its definition for the platform.

`DEFINITION` is registered as the `notifier` entry point of `emailengine.services` (pyproject.toml).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import grpc

from emailengine.notifier.v1 import notifier_service_pb2_grpc as pb_grpc
from libs.events import Subscriptions
from libs.jobs import PeriodicJob
from libs.runtime import Runtime, ServiceDefinition
from libs.unit_of_work import SqlUnitOfWork
from notifier import jobs
from notifier.adapters.telegram import TelegramBotClient
from notifier.app.events import subscriptions as event_handlers
from notifier.app.service import PRUNE_EVERY, Notifier
from notifier.config import NotifierConfig, TelegramSettings, load_config
from notifier.server import NotifierServicer

SERVICE = "notifier"


def telegram_client(settings: TelegramSettings) -> TelegramBotClient | None:
    """The shared bot's client; None when no token is configured (Telegram disabled)."""
    if settings.bot_token is None:
        return None
    return TelegramBotClient(
        settings.bot_token.get_secret_value(), api_base=settings.api_base, timeout=settings.timeout_seconds
    )


def build(rt: Runtime) -> Notifier:
    config: NotifierConfig = rt.config
    notifier = Notifier(
        rt.db, rt.clock, config.notifier, telegram=telegram_client(config.telegram), registry=rt.metrics
    )
    rt.on_stop.append(notifier.close)
    return notifier


def add_servicers(app: Notifier, server: grpc.Server) -> None:
    pb_grpc.add_NotifierServiceServicer_to_server(NotifierServicer(app), server)


def subscriptions(app: Notifier) -> Subscriptions:
    handlers = {
        event_cls: (lambda uow, envelope, event, handle=handle: handle(uow.session, envelope, event))
        for event_cls, handle in event_handlers(app.intake)
    }
    return Subscriptions(unit_of_work=lambda: SqlUnitOfWork(app.db, source=SERVICE, clock=app.clock), handlers=handlers)


def start(app: Notifier) -> None:
    if app.settings.delivery_runner == "service":
        app.start_loop()


def periodic_jobs(config: NotifierConfig) -> list[PeriodicJob]:
    settings = config.notifier
    if settings.delivery_runner != "rq":
        return []
    return [
        PeriodicJob("notifier-deliver", jobs.deliver_due, timedelta(seconds=max(1.0, settings.delivery_poll_seconds))),
        PeriodicJob("notifier-prune-dedup", jobs.prune_dedup, PRUNE_EVERY),
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
