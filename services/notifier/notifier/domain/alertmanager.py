"""Prometheus Alertmanager webhook payloads (version "4"): strict parsing, then mapping to Alerts.

Malformed payloads are rejected whole with InvalidArgument naming each bad field by its JSON path
(`alerts[1].startsAt`), which the gateway turns into a 400 Alertmanager will not retry. Unknown fields
are ignored (newer Alertmanagers add `notification_reason`, `routeLabels`, …).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from libs.errors import InvalidArgument, Violations
from notifier.domain.alert import (
    MAX_LABEL_VALUE,
    MAX_LABELS,
    MAX_TEXT,
    MAX_TITLE,
    MAX_URL,
    PLATFORM_TENANT,
    Alert,
    Severity,
    cut_text,
    sanitize_text,
)

SUPPORTED_VERSION = "4"
MAX_ALERTS_PER_PAYLOAD = 10_000
SOURCE = "alertmanager"
TENANT_LABELS = ("tenant", "tenant_id")

_STATUSES = ("firing", "resolved")
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{1,64}$")

#: Alertmanager severities vary by rule author; unknown or missing ones become WARNING so a human hears.
SEVERITY_ALIASES: Mapping[str, Severity] = {
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "emergency": Severity.CRITICAL,
    "high": Severity.CRITICAL,
    "error": Severity.WARNING,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "medium": Severity.WARNING,
    "info": Severity.INFO,
    "informational": Severity.INFO,
    "notice": Severity.INFO,
    "low": Severity.INFO,
    "none": Severity.INFO,
}
DEFAULT_SEVERITY = Severity.WARNING


@dataclass(frozen=True)
class AlertmanagerAlert:
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None  # None for Go's zero time: still firing with no known end
    generator_url: str
    fingerprint: str

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"


@dataclass(frozen=True)
class AlertmanagerPayload:
    version: str
    group_key: str
    status: str
    receiver: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    truncated_alerts: int
    alerts: tuple[AlertmanagerAlert, ...]


def parse_rfc3339(value: str) -> datetime | None:
    """Go's RFC 3339 timestamps (nanoseconds allowed); Go's zero time "0001-01-01T00:00:00Z" → None."""
    match = _RFC3339.match(value)
    if not match:
        raise ValueError("must be an RFC 3339 timestamp")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, off_h, off_m = match.groups()[6:]
    if zulu:
        tz: timezone = UTC
    else:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        tz = timezone(offset if sign == "+" else -offset)
    micro = int((fraction or "0").ljust(6, "0")[:6])
    stamp = datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=tz)  # ValueError if invalid
    if year <= 1:  # Go's zero time (and nothing real is that old); converting it could also overflow
        return None
    return stamp.astimezone(UTC)


def parse_alertmanager_payload(body: bytes | str | Mapping[str, object]) -> AlertmanagerPayload:
    """Validate a webhook body (raw JSON or already decoded), naming every problem at once."""
    data: object = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument("body", f"not valid JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise InvalidArgument("body", "must be a JSON object (Alertmanager webhook payload)")
    v = Violations()
    version = data.get("version")
    if version is None:
        v.add("version", "required")
    elif version != SUPPORTED_VERSION:
        v.add("version", f'must be "{SUPPORTED_VERSION}" (got {version!r})')
    group_key = _string(data, "groupKey", v, required=True)
    status = _string(data, "status", v, required=True)
    if status and status not in _STATUSES:
        v.add("status", "must be firing or resolved")
    receiver = _string(data, "receiver", v)
    external_url = _string(data, "externalURL", v)
    group_labels = _string_map(data, "groupLabels", v)
    common_labels = _string_map(data, "commonLabels", v)
    common_annotations = _string_map(data, "commonAnnotations", v)
    truncated = data.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        v.add("truncatedAlerts", "must be a non-negative integer")
        truncated = 0
    raw_alerts = data.get("alerts")
    alerts: list[AlertmanagerAlert] = []
    if raw_alerts is None:
        v.add("alerts", "required")
    elif not isinstance(raw_alerts, list):
        v.add("alerts", "must be a list")
    elif not raw_alerts:
        v.add("alerts", "must hold at least one alert")
    elif len(raw_alerts) > MAX_ALERTS_PER_PAYLOAD:
        v.add("alerts", f"at most {MAX_ALERTS_PER_PAYLOAD} alerts per payload")
    else:
        for index, raw in enumerate(raw_alerts):
            parsed = _parse_alert(raw, f"alerts[{index}]", v)
            if parsed is not None:
                alerts.append(parsed)
    if status == "resolved" and any(not a.resolved for a in alerts):
        v.add("status", "is resolved but an alert is firing (firing if any alert fires)")
    v.raise_if_any()
    return AlertmanagerPayload(
        version=SUPPORTED_VERSION,
        group_key=group_key,
        status=status,
        receiver=receiver,
        group_labels=group_labels,
        common_labels=common_labels,
        common_annotations=common_annotations,
        external_url=external_url,
        truncated_alerts=truncated,
        alerts=tuple(alerts),
    )


def _string(data: Mapping[str, object], name: str, v: Violations, *, required: bool = False, path: str = "") -> str:
    value = data.get(name)
    field_path = f"{path}.{name}" if path else name
    if value is None:
        if required:
            v.add(field_path, "required")
        return ""
    if not isinstance(value, str):
        v.add(field_path, "must be a string")
        return ""
    if required and not value:
        v.add(field_path, "must not be empty")
    return value


def _string_map(data: Mapping[str, object], name: str, v: Violations, *, path: str = "") -> dict[str, str]:
    value = data.get(name)
    field_path = f"{path}.{name}" if path else name
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        v.add(field_path, "must be an object of strings")
        return {}
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            v.add(f"{field_path}.{key}", "must be a string")
            continue
        result[str(key)] = item
    return result


def _parse_alert(raw: object, path: str, v: Violations) -> AlertmanagerAlert | None:
    if not isinstance(raw, Mapping):
        v.add(path, "must be an object")
        return None
    before = len(v.items)
    status = _string(raw, "status", v, required=True, path=path)
    if status and status not in _STATUSES:
        v.add(f"{path}.status", "must be firing or resolved")
    if raw.get("labels") is None:
        v.add(f"{path}.labels", "required")
    labels = _string_map(raw, "labels", v, path=path)
    annotations = _string_map(raw, "annotations", v, path=path)
    fingerprint = _string(raw, "fingerprint", v, required=True, path=path)
    if fingerprint and not _FINGERPRINT.match(fingerprint):
        v.add(f"{path}.fingerprint", "must be hexadecimal (at most 64 digits)")
    generator_url = _string(raw, "generatorURL", v, path=path)
    starts_at = _timestamp(raw, "startsAt", path, v, required=True)
    ends_at = _timestamp(raw, "endsAt", path, v, required=False)
    if status == "resolved" and ends_at is None and len(v.items) == before:
        v.add(f"{path}.endsAt", "a resolved alert must carry its resolution time")
    if len(v.items) > before or starts_at is None:
        return None
    return AlertmanagerAlert(
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url,
        fingerprint=fingerprint.lower(),
    )


def _timestamp(raw: Mapping[str, object], name: str, path: str, v: Violations, *, required: bool) -> datetime | None:
    value = raw.get(name)
    if value is None:
        if required:
            v.add(f"{path}.{name}", "required")
        return None
    if not isinstance(value, str):
        v.add(f"{path}.{name}", "must be an RFC 3339 timestamp string")
        return None
    try:
        stamp = parse_rfc3339(value)
    except ValueError:
        v.add(f"{path}.{name}", f"must be an RFC 3339 timestamp (got {value[:40]!r})")
        return None
    if stamp is None and required:
        v.add(f"{path}.{name}", "must not be the zero time")
    return stamp


def severity_from_labels(labels: Mapping[str, str]) -> Severity:
    return SEVERITY_ALIASES.get(labels.get("severity", "").strip().lower(), DEFAULT_SEVERITY)


def alertmanager_dedup_key(alert: AlertmanagerAlert) -> str:
    """fingerprint + status: the firing and the resolution are two messages, each sent once."""
    return f"alertmanager:{alert.fingerprint}:{alert.status}"


def alerts_from_payload(payload: AlertmanagerPayload) -> list[Alert]:
    """One Alert per Alertmanager alert; `tenant` label routes it, none makes it a platform alert."""
    v = Violations()
    alerts: list[Alert] = []
    for index, am in enumerate(payload.alerts):
        tenant = PLATFORM_TENANT
        for name in TENANT_LABELS:
            if am.labels.get(name, "").strip():
                tenant = am.labels[name].strip()
                break
        try:
            alerts.append(_to_alert(am, tenant))
        except InvalidArgument as exc:
            for violation in exc.violations:
                field = "labels.tenant" if violation.field == "tenant" else violation.field
                v.add(f"alerts[{index}].{field}", violation.description)
    v.raise_if_any()
    return alerts


def _to_alert(am: AlertmanagerAlert, tenant: str) -> Alert:
    title = cut_text(sanitize_text(am.labels.get("alertname", "")).strip() or "Alertmanager alert", MAX_TITLE)
    lines = [am.annotations.get("summary", ""), am.annotations.get("description", "")]
    lines += [f"{k}: {val}" for k, val in sorted(am.annotations.items()) if k not in ("summary", "description")]
    text = cut_text("\n".join(line.strip() for line in lines if line.strip()), MAX_TEXT)
    labels = {k: cut_text(val, MAX_LABEL_VALUE) for k, val in sorted(am.labels.items())[:MAX_LABELS]}
    url = am.generator_url if am.generator_url.startswith(("http://", "https://")) else ""
    if len(url) > MAX_URL or any(c.isspace() for c in url):
        url = ""
    occurred_at = am.ends_at if am.resolved and am.ends_at is not None else am.starts_at
    return Alert.create(
        tenant=tenant,
        severity=severity_from_labels(am.labels),
        dedup_key=alertmanager_dedup_key(am),
        title=title,
        text=text,
        source=SOURCE,
        occurred_at=occurred_at,
        labels=labels,
        resolved=am.resolved,
        url=url,
    )


def parse_alertmanager_webhook(body: bytes | str | Mapping[str, object]) -> list[Alert]:
    """Parse, validate and map in one call: what POST /api/v2/alertmanager needs."""
    return alerts_from_payload(parse_alertmanager_payload(body))
