"""The Telegram stand-in on loopback, sharing a FakeClock with the code under test (no real waiting);
the notifier service assembled on SQLite or PostgreSQL around it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libs.auth import Caller, Role
from libs.clock import FakeClock
from libs.config import Settings
from libs.db import Database, connect, migrate
from notifier.adapters.telegram import TelegramBotClient
from notifier.adapters.webhook import WebhookSender
from notifier.app.routes import RouteSpec
from notifier.app.service import Notifier
from notifier.bootstrap import DEFINITION
from notifier.config import NotifierSettings
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


class NotifierFactory:
    def __init__(self, db: Database, clock: FakeClock, api: TelegramBotApiStandIn):
        self.db, self.clock, self.api = db, clock, api
        self.built: list[Notifier] = []

    def __call__(self, *, telegram: bool = True, webhook: WebhookSender | None = None, **settings: Any) -> Notifier:
        client = (
            TelegramBotClient(self.api.token, api_base=self.api.base_url, timeout=5.0, trust_env=False)
            if telegram
            else None
        )
        notifier = Notifier(
            self.db,
            self.clock,
            NotifierSettings(**{**FAST, **settings}),
            telegram=client,
            webhook=webhook,
            random_unit=lambda: 0.5,
        )
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
