"""The Telegram stand-in on loopback, sharing a FakeClock with the code under test (no real waiting);
the notifier service assembled on SQLite or PostgreSQL around it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.config import Settings
from libs.db import Database, connect, migrate
from libs.outbound import GuardedClient, OutboundPolicy
from notifier.adapters.telegram import TelegramBotClient
from notifier.adapters.unit_of_work import SqlNotifierUnitOfWork
from notifier.adapters.webhook import WebhookDestinations, WebhookSender
from notifier.app.routes import RouteSpec
from notifier.bootstrap import DEFINITION, Notifier, build_notifier
from notifier.config import NotifierConfig, NotifierSettings, TelegramSettings
from tests.harness.servers import PostgresServer
from tests.standins.telegram_bot_api import TelegramBotApiStandIn

SOS_CHAT = -1001000000001
ULIXAI_CHAT = -1001000000002
ADMIN_CHAT = -1001000000099


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def telegram_api(clock: FakeClock) -> Iterator[TelegramBotApiStandIn]:
    api = TelegramBotApiStandIn(clock=lambda: clock.now().timestamp(), wall_clock=lambda: clock.now().timestamp())
    api.add_chat(SOS_CHAT, title="sos-expat alerts")
    api.add_chat(ULIXAI_CHAT, title="ulixai alerts")
    api.add_chat(ADMIN_CHAT, title="admins", username="ee_admins")
    api.start()
    yield api
    api.stop()


@pytest.fixture
def telegram_client(telegram_api: TelegramBotApiStandIn) -> Iterator[TelegramBotClient]:
    client = TelegramBotClient(telegram_api.token, api_base=telegram_api.base_url, timeout=5.0, trust_env=False)
    yield client
    client.close()


# -- the notifier service assembled on a real database (SQLite file, or PostgreSQL) -----------------


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = connect(Settings(data_dir=tmp_path), "notifier")
    migrate(db, DEFINITION.migrations)
    yield db
    db.dispose()


@pytest.fixture
def postgres_db(postgres: PostgresServer, tmp_path: Path) -> Iterator[Database]:
    name = f"ee_notifier_{uuid.uuid4().hex[:10]}"
    postgres.create_database(name)
    url = Settings(DATABASE_URL=postgres.url_for(name)).database_url  # the psycopg 3 driver, as in production
    db = connect(Settings(data_dir=tmp_path), "notifier", url=url)
    migrate(db, DEFINITION.migrations)
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest) -> Database:
    """The outbox behaviours that depend on the database run on both."""
    return request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "postgres_db")


ADMIN = Caller("admin", Role.ADMIN, "")
SOS_OPERATOR = Caller("sos-expat-operator", Role.OPERATOR, "sos-expat")
ULIXAI_OPERATOR = Caller("ulixai-operator", Role.OPERATOR, "ulixai")

# Fast and deterministic by default: one route at a time, no spacing, storms only when a test wants them.
FAST = {"delivery_concurrency": 1, "min_spacing_seconds": 0, "storm_threshold": 1000}
# The tests' own webhook receivers listen on loopback: allowed the way an operator allows an on-premise network.
LOOPBACK_ALLOWED = "127.0.0.0/8"


def outbound_policy(allow: str = LOOPBACK_ALLOWED, **settings: Any) -> OutboundPolicy:
    """The platform's outbound policy from its settings (the platform's own ports refused whatever `allow` says)."""
    return Settings(outbound_allow_networks=allow, **settings).outbound_policy()


class NotifierFactory:
    def __init__(self, db: Database, clock: FakeClock, api: TelegramBotApiStandIn):
        self.db, self.clock, self.api = db, clock, api
        self.built: list[Notifier] = []

    def unit_of_work(self) -> SqlNotifierUnitOfWork:
        return SqlNotifierUnitOfWork(self.db, source="notifier", clock=self.clock)

    def __call__(self, *, telegram: bool = True, policy: OutboundPolicy | None = None, **settings: Any) -> Notifier:
        client = (
            TelegramBotClient(self.api.token, api_base=self.api.base_url, timeout=5.0, trust_env=False)
            if telegram
            else None
        )
        policy = policy or outbound_policy()
        outbound = GuardedClient(policy)
        config = NotifierConfig(NotifierSettings(**{**FAST, **settings}), TelegramSettings())
        webhook = WebhookSender(outbound, deadline_seconds=config.notifier.webhook_timeout_seconds)
        notifier = build_notifier(
            self.unit_of_work,
            self.clock,
            config,
            telegram=client,
            webhook=webhook,
            destinations=WebhookDestinations(policy),
            send_deadline=timedelta(seconds=webhook.deadline_seconds + 5),
            random_unit=lambda: 0.5,
        )
        notifier.closers.append(outbound.close)
        if client is not None:
            notifier.closers.append(client.close)
        self.built.append(notifier)
        return notifier

    def close(self) -> None:
        for notifier in self.built:
            notifier.close()


@pytest.fixture
def make_notifier(any_db: Database, clock: FakeClock, telegram_api: TelegramBotApiStandIn) -> Iterator[NotifierFactory]:
    factory = NotifierFactory(any_db, clock, telegram_api)
    yield factory
    factory.close()


@pytest.fixture
def make_sqlite_notifier(
    sqlite_db: Database, clock: FakeClock, telegram_api: TelegramBotApiStandIn
) -> Iterator[NotifierFactory]:
    factory = NotifierFactory(sqlite_db, clock, telegram_api)
    yield factory
    factory.close()


def standard_routes(notifier: Notifier) -> None:
    """sos-expat and ulixai chats, and the admin chat that sees everything."""
    notifier.routes.create(ADMIN, RouteSpec(route_id="sos", tenant_id="sos-expat", telegram_chat_id=str(SOS_CHAT)))
    notifier.routes.create(ADMIN, RouteSpec(route_id="ulixai", tenant_id="ulixai", telegram_chat_id=str(ULIXAI_CHAT)))
    notifier.routes.create(ADMIN, RouteSpec(route_id="admins", admin=True, telegram_chat_id=str(ADMIN_CHAT)))
