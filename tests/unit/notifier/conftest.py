"""Shared builders for the notifier's pure tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from notifier.domain.alert import Alert

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def make_alert(**overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "tenant": "sos-expat",
        "severity": "critical",
        "dedup_key": "ip-listed:203.0.113.7:zen.spamhaus.org",
        "title": "IP 203.0.113.7 listed on zen.spamhaus.org",
        "text": "Moved to standby; its volume went to 2 healthy IPs.",
        "source": "reputation",
        "occurred_at": T0,
        "labels": {"ip": "203.0.113.7", "zone": "zen.spamhaus.org"},
    }
    fields.update(overrides)
    return Alert.create(**fields)


@pytest.fixture
def alert_factory() -> Callable[..., Alert]:
    return make_alert
