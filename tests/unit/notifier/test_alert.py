"""Alert validation: producers get every bad field named at once; text is made safe to send."""

from __future__ import annotations

from datetime import datetime

import pytest

from libs.errors import InvalidArgument
from notifier.domain.alert import PLATFORM_TENANT, Alert, Severity, sanitize_text
from tests.unit.notifier.conftest import T0, make_alert


def test_valid_alert_keeps_its_fields() -> None:
    alert = make_alert()
    assert alert.tenant == "sos-expat"
    assert alert.severity is Severity.CRITICAL
    assert alert.labels["ip"] == "203.0.113.7"
    assert not alert.is_platform


def test_severity_is_ordered_and_parsed_strictly() -> None:
    assert Severity.INFO < Severity.WARNING < Severity.CRITICAL
    assert Severity.parse(" Warning ") is Severity.WARNING
    with pytest.raises(ValueError, match="unknown severity"):
        Severity.parse("fatal")


def test_every_bad_field_is_named() -> None:
    with pytest.raises(InvalidArgument) as caught:
        Alert.create(
            tenant="Not A Tenant",
            severity="loud",
            dedup_key="  ",
            title="",
            text="",
            source="",
            occurred_at=datetime(2026, 1, 1),  # naive
        )
    fields = {v.field for v in caught.value.violations}
    assert fields == {"tenant", "severity", "dedup_key", "text", "source", "occurred_at"}


def test_platform_alerts_have_an_empty_tenant() -> None:
    alert = make_alert(tenant=PLATFORM_TENANT)
    assert alert.is_platform


def test_title_defaults_to_the_first_line_of_text() -> None:
    alert = make_alert(title="", text="Quota sync failed\nMailWizz answered 502")
    assert alert.title == "Quota sync failed"


def test_labels_are_validated_and_frozen() -> None:
    with pytest.raises(InvalidArgument) as caught:
        make_alert(labels={"bad key": "x", "ok": "y" * 2000})
    assert {v.field for v in caught.value.violations} == {"labels['bad key']", "labels.ok"}
    alert = make_alert(labels={"ip": "1.2.3.4"})
    with pytest.raises(TypeError):
        alert.labels["ip"] = "5.6.7.8"  # type: ignore[index]


def test_url_must_be_http() -> None:
    with pytest.raises(InvalidArgument, match="url"):
        make_alert(url="javascript:alert(1)")
    assert make_alert(url="https://grafana.example/d/x").url == "https://grafana.example/d/x"


def test_sanitize_text_removes_what_cannot_be_sent() -> None:
    assert sanitize_text("a\r\nb\rc\x00d\x1be\tf") == "a\nb\ncde\tf"
    assert sanitize_text("lone \ud800 surrogate") == "lone \ufffd surrogate"
    assert sanitize_text("e\u0301") == "\u00e9"  # NFC


def test_alert_text_is_sanitized_and_stripped() -> None:
    alert = make_alert(text="  line1\r\nline2\x07  ")
    assert alert.text == "line1\nline2"
    assert alert.occurred_at == T0
