"""The Telegram stand-in on loopback, sharing a FakeClock with the code under test (no real waiting)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from libs.clock import FakeClock
from notifier.adapters.telegram import TelegramBotClient
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
