"""The notifier's settings: defaults as documented, policies built from them, bad values refused by name."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from pydantic import ValidationError

from notifier.config import NotifierSettings, TelegramSettings, load_config
from tests.standins.telegram_bot_api import make_token


def test_defaults_and_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EE_NOTIFIER_"):
            monkeypatch.delenv(name)
    s = NotifierSettings()
    assert (s.delivery_runner, s.delivery_poll_seconds, s.lease_seconds) == ("service", 1.0, 60)
    assert s.dedup_policy().window == timedelta(hours=1)
    retry = s.retry_policy()
    assert retry.max_delay == timedelta(seconds=60) and retry.give_up_after == timedelta(hours=24)
    storm = s.storm_policy()
    assert (storm.threshold, storm.group_wait, storm.min_spacing) == (4, timedelta(seconds=20), timedelta(seconds=1))


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EE_NOTIFIER_RETRY_MAX_DELAY_SECONDS", "5")
    monkeypatch.setenv("EE_NOTIFIER_DELIVERY_RUNNER", "rq")
    s = NotifierSettings()
    assert s.retry_policy().max_delay == timedelta(seconds=5) and s.delivery_runner == "rq"
    monkeypatch.setenv("EE_NOTIFIER_DELIVERY_POLL_SECONDS", "0")
    with pytest.raises(ValidationError, match="delivery_poll_seconds"):
        NotifierSettings()


def test_telegram_settings_are_read_once_with_the_token_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EE_TELEGRAM_BOT_TOKEN", "EE_TELEGRAM_API_BASE", "EE_TELEGRAM_TIMEOUT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    assert not TelegramSettings().enabled  # disabled unless configured
    token = make_token()
    monkeypatch.setenv("EE_TELEGRAM_BOT_TOKEN", token)
    monkeypatch.setenv("EE_TELEGRAM_API_BASE", "http://127.0.0.1:9/")
    monkeypatch.setenv("EE_TELEGRAM_TIMEOUT_SECONDS", "3")
    config = load_config()
    assert config.telegram.enabled and config.telegram.api_base == "http://127.0.0.1:9"
    assert config.telegram.timeout_seconds == 3
    assert token.split(":")[1] not in repr(config) and token.split(":")[1] not in str(config.telegram)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EE_TELEGRAM_TIMEOUT_SECONDS", "soon"),
        ("EE_TELEGRAM_API_BASE", "api.telegram.org"),
        ("EE_TELEGRAM_BOT_TOKEN", "123:short-secret-value"),
    ],
)
def test_a_bad_telegram_setting_stops_the_start_naming_it_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    monkeypatch.setenv("EE_TELEGRAM_BOT_TOKEN", make_token())
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit):
        load_config()
    error = capsys.readouterr().err
    assert name in error and "short-secret-value" not in error
