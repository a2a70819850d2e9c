"""The notifier's settings: defaults as documented, policies built from them, bad values refused by name."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from pydantic import ValidationError

from notifier.app.settings import NotifierSettings


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
