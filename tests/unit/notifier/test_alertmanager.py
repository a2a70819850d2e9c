"""Alertmanager webhook payloads: strict parsing naming the field, mapping to routed Alerts."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from libs.errors import InvalidArgument
from notifier.domain.alert import PLATFORM_TENANT, Severity
from notifier.domain.alertmanager import (
    alerts_from_payload,
    parse_alertmanager_payload,
    parse_alertmanager_webhook,
    parse_rfc3339,
)

# The reference's example, plus a second alert for a tenant.
PAYLOAD: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="HostDown"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "telegram-bridge",
    "groupLabels": {"alertname": "HostDown"},
    "commonLabels": {"alertname": "HostDown", "severity": "critical"},
    "commonAnnotations": {"summary": "host down"},
    "externalURL": "http://am.example:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HostDown", "instance": "h1:9100", "severity": "critical"},
            "annotations": {"summary": "h1:9100 down"},
            "startsAt": "2024-05-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prom:9090/graph?g0.expr=up+%3D%3D+0",
            "fingerprint": "1a30ba71cca2921f",
        },
        {
            "status": "resolved",
            "labels": {
                "alertname": "BounceRateHigh",
                "tenant": "sos-expat",
                "severity": "warning",
                "ip": "203.0.113.7",
            },
            "annotations": {
                "summary": "bounce rate back under 5%",
                "description": "was 7.2% <for 1h> & more",
                "runbook_url": "https://runbooks.example/bounce",
            },
            "startsAt": "2024-05-01T09:00:00.123456789+02:00",
            "endsAt": "2024-05-01T10:05:00Z",
            "generatorURL": "http://prom:9090/graph",
            "fingerprint": "ABCDEF0123456789",
        },
    ],
}


def payload(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(PAYLOAD)
    data.update(changes)
    return data


def violations_of(body: object) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_alertmanager_webhook(body)  # type: ignore[arg-type]
    return {v.field: v.description for v in caught.value.violations}


def test_the_reference_payload_parses() -> None:
    parsed = parse_alertmanager_payload(json.dumps(PAYLOAD).encode())
    assert parsed.group_key == '{}:{alertname="HostDown"}' and parsed.receiver == "telegram-bridge"
    first, second = parsed.alerts
    assert first.ends_at is None  # Go's zero time
    assert first.starts_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert second.starts_at == datetime(2024, 5, 1, 7, 0, 0, 123456, tzinfo=UTC)
    assert second.fingerprint == "abcdef0123456789"


def test_two_alerts_map_to_two_routed_alerts() -> None:
    host_down, bounce = parse_alertmanager_webhook(PAYLOAD)
    assert host_down.tenant == PLATFORM_TENANT and host_down.severity is Severity.CRITICAL
    assert host_down.title == "HostDown" and host_down.text == "h1:9100 down"
    assert host_down.dedup_key == "alertmanager:1a30ba71cca2921f:firing"
    assert host_down.url.startswith("http://prom:9090/graph")
    assert host_down.source == "alertmanager" and not host_down.resolved
    assert bounce.tenant == "sos-expat" and bounce.severity is Severity.WARNING and bounce.resolved
    assert bounce.dedup_key == "alertmanager:abcdef0123456789:resolved"
    assert bounce.occurred_at == datetime(2024, 5, 1, 10, 5, tzinfo=UTC)
    assert bounce.text == (
        "bounce rate back under 5%\nwas 7.2% <for 1h> & more\nrunbook_url: https://runbooks.example/bounce"
    )
    assert bounce.labels["ip"] == "203.0.113.7"


def test_unknown_fields_are_ignored() -> None:
    extended = payload(notification_reason="new_alerts", routeLabels={"team": "ops"})
    extended["alerts"][0]["somethingNew"] = True
    assert len(parse_alertmanager_webhook(extended)) == 2


@pytest.mark.parametrize(
    ("severity_label", "severity"),
    [
        ("critical", Severity.CRITICAL),
        ("page", Severity.CRITICAL),
        ("warning", Severity.WARNING),
        ("error", Severity.WARNING),
        ("info", Severity.INFO),
        ("whatever", Severity.WARNING),
        (None, Severity.WARNING),
    ],
)
def test_severity_mapping(severity_label: str | None, severity: Severity) -> None:
    data = payload()
    labels = data["alerts"][0]["labels"]
    labels.pop("severity")
    if severity_label is not None:
        labels["severity"] = severity_label
    assert parse_alertmanager_webhook(data)[0].severity is severity


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (payload(version="3"), "version"),
        ({k: v for k, v in PAYLOAD.items() if k != "version"}, "version"),
        (payload(status="pending"), "status"),
        (payload(groupKey=""), "groupKey"),
        (payload(alerts=[]), "alerts"),
        (payload(alerts={"a": 1}), "alerts"),
        ({k: v for k, v in PAYLOAD.items() if k != "alerts"}, "alerts"),
        (payload(truncatedAlerts=-1), "truncatedAlerts"),
        (payload(commonLabels={"a": 1}), "commonLabels.a"),
        (payload(status="resolved"), "status"),
    ],
)
def test_malformed_payloads_name_the_field(body: object, field: str) -> None:
    assert field in violations_of(body)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "done"}, "alerts[1].status"),
        ({"labels": None}, "alerts[1].labels"),
        ({"labels": ["x"]}, "alerts[1].labels"),
        ({"annotations": {"summary": 3}}, "alerts[1].annotations.summary"),
        ({"startsAt": "yesterday"}, "alerts[1].startsAt"),
        ({"startsAt": "2024-13-01T00:00:00Z"}, "alerts[1].startsAt"),
        ({"startsAt": None}, "alerts[1].startsAt"),
        ({"startsAt": "0001-01-01T00:00:00Z"}, "alerts[1].startsAt"),
        ({"endsAt": 5}, "alerts[1].endsAt"),
        ({"endsAt": "0001-01-01T00:00:00Z"}, "alerts[1].endsAt"),  # resolved without a resolution time
        ({"fingerprint": ""}, "alerts[1].fingerprint"),
        ({"fingerprint": "not-hex!"}, "alerts[1].fingerprint"),
        ({"generatorURL": 1}, "alerts[1].generatorURL"),
    ],
)
def test_malformed_alerts_name_the_field(change: dict[str, Any], field: str) -> None:
    data = payload()
    data["alerts"][1].update(change)
    assert field in violations_of(data)


def test_every_problem_is_reported_at_once() -> None:
    data = payload(version="5")
    data["alerts"][0]["fingerprint"] = None
    data["alerts"][1] = "nope"
    assert set(violations_of(data)) == {"version", "alerts[0].fingerprint", "alerts[1]"}


def test_a_bad_tenant_label_is_named() -> None:
    data = payload()
    data["alerts"][1]["labels"]["tenant"] = "Not Valid"
    assert "alerts[1].labels.tenant" in violations_of(data)


def test_tenant_id_label_is_accepted_too() -> None:
    data = payload()
    data["alerts"][0]["labels"]["tenant_id"] = "ulixai"
    assert parse_alertmanager_webhook(data)[0].tenant == "ulixai"


def test_huge_annotations_are_cut_not_rejected() -> None:
    data = payload()
    data["alerts"][0]["annotations"]["description"] = "x" * 100_000
    data["alerts"][0]["labels"]["alertname"] = "A" * 1000
    [alert, _] = parse_alertmanager_webhook(data)
    assert len(alert.text) <= 65_536 and alert.text.endswith("…")
    assert len(alert.title) <= 500


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01t10:00:00.5z", datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00.123456789-00:30", datetime(2024, 5, 1, 10, 30, 0, 123456, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_rfc3339(text: str, expected: datetime | None) -> None:
    assert parse_rfc3339(text) == expected


@pytest.mark.parametrize("text", ["2024-05-01 10:00:00Z", "2024-05-01T10:00:00", "2024-05-01T10:00Z", ""])
def test_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_alerts_from_payload_is_the_mapping_step() -> None:
    parsed = parse_alertmanager_payload(PAYLOAD)
    assert [a.title for a in alerts_from_payload(parsed)] == ["HostDown", "BounceRateHigh"]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"version": "4", "alerts": [{"labels": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001 + b"]}",
    ],
    ids=["arrays", "objects-in-a-field"],
)
def test_deeply_nested_json_to_the_alertmanager_receiver_is_a_clear_400(body: bytes) -> None:
    violations = violations_of(body)
    assert list(violations) == ["body"] and "not valid JSON" in violations["body"]


def test_a_huge_alertmanager_payload_is_a_clear_400() -> None:
    over_the_limit = json.dumps(payload(padding="x" * (4 << 20))).encode()
    assert violations_of(over_the_limit) == {"body": f"larger than {4 << 20} bytes"}
    too_many = payload(alerts=[PAYLOAD["alerts"][0]] * 10_001)
    assert violations_of(json.dumps(too_many).encode()) == {"alerts": "at most 10000 alerts per payload"}
