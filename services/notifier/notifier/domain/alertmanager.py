"""Prometheus Alertmanager webhook payloads (version "4"): pydantic models of the payload, then mapping to Alerts.

Malformed payloads are rejected whole with InvalidArgument naming each bad field by its JSON path
(`alerts[1].startsAt`), which the gateway turns into a 400 Alertmanager will not retry. Unknown fields are
ignored (newer Alertmanagers add `notification_reason`, `routeLabels`, …). Types are strict: a number where
a string belongs is an error, not a conversion. The JSON parser refuses nesting deeper than a payload ever
has, so a hostile body is a clear 400, never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, ValidationError

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
# The services' gRPC limit: a larger body never reaches here through the API, and is refused by name otherwise.
MAX_PAYLOAD_BYTES = 4 << 20
SOURCE = "alertmanager"
TENANT_LABELS = ("tenant", "tenant_id")

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


# -- field types --------------------------------------------------------------------------------------


def _absent_as(empty: object) -> Callable[[object], object]:
    """JSON null reads as the field's empty value (Alertmanager omits or nulls optional fields)."""
    return lambda value: empty if value is None else value


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string")
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise ValueError(f"must be an RFC 3339 timestamp (got {value[:40]!r})") from None


def _start(value: object) -> datetime:
    stamp = _timestamp(value)
    if stamp is None:
        raise ValueError("must not be the zero time")
    return stamp


def _fingerprint(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if not _FINGERPRINT.match(value):
        raise ValueError("must be hexadecimal (at most 64 digits)")
    return value.lower()


Text = Annotated[str, BeforeValidator(_absent_as(""))]
StringMap = Annotated[dict[str, str], BeforeValidator(_absent_as({}))]
Status = Literal["firing", "resolved"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class AlertmanagerAlert(_Model):
    status: Status
    labels: dict[str, str]
    annotations: StringMap = {}
    starts_at: Annotated[datetime, PlainValidator(_start)] = Field(alias="startsAt")
    # None for Go's zero time: still firing with no known end.
    ends_at: Annotated[datetime | None, PlainValidator(_timestamp)] = Field(default=None, alias="endsAt")
    generator_url: Text = Field(default="", alias="generatorURL")
    fingerprint: Annotated[str, AfterValidator(_fingerprint)]

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"


class AlertmanagerPayload(_Model):
    version: Literal["4"]
    group_key: Annotated[str, Field(min_length=1)] = Field(alias="groupKey")
    status: Status
    receiver: Text = ""
    group_labels: StringMap = Field(default={}, alias="groupLabels")
    common_labels: StringMap = Field(default={}, alias="commonLabels")
    common_annotations: StringMap = Field(default={}, alias="commonAnnotations")
    external_url: Text = Field(default="", alias="externalURL")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    alerts: list[AlertmanagerAlert] = Field(min_length=1, max_length=MAX_ALERTS_PER_PAYLOAD)


# -- parsing ------------------------------------------------------------------------------------------

_DESCRIPTIONS = {
    "missing": "required",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "dict_type": "must be an object of strings",
    "model_type": "must be an object",
    "list_type": "must be a list",
    "int_type": "must be a non-negative integer",
    "greater_than_equal": "must be a non-negative integer",
    "too_short": "must hold at least one alert",
    "too_long": f"at most {MAX_ALERTS_PER_PAYLOAD} alerts per payload",
}


def _field_path(loc: tuple[int | str, ...]) -> str:
    """('alerts', 1, 'startsAt') → 'alerts[1].startsAt', the path the payload's author sees."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _violations(error: ValidationError) -> Violations:
    found = Violations()
    for item in error.errors(include_url=False, include_input=False):
        kind, context = item["type"], item.get("ctx") or {}
        if not item["loc"]:
            if kind == "json_invalid":
                found.add("body", f"not valid JSON: {context.get('error', 'unreadable')}")
            else:
                found.add("body", "must be a JSON object (Alertmanager webhook payload)")
        elif kind == "literal_error":
            found.add(_field_path(item["loc"]), f"must be {context['expected']}")
        elif kind == "value_error":
            found.add(_field_path(item["loc"]), str(context["error"]))
        else:
            found.add(_field_path(item["loc"]), _DESCRIPTIONS.get(kind, item["msg"]))
    return found


def parse_alertmanager_payload(body: bytes | str | Mapping[str, object]) -> AlertmanagerPayload:
    """Validate a webhook body (raw JSON or already decoded), naming every problem at once."""
    if isinstance(body, bytes | str) and len(body) > MAX_PAYLOAD_BYTES:
        raise InvalidArgument("body", f"larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        if isinstance(body, bytes | str):
            payload = AlertmanagerPayload.model_validate_json(body)
        else:
            payload = AlertmanagerPayload.model_validate(body)
    except ValidationError as exc:
        _violations(exc).raise_if_any()
        raise  # unreachable: a ValidationError always names something
    # What one field alone cannot say.
    problems = Violations()
    if payload.status == "resolved" and any(not a.resolved for a in payload.alerts):
        problems.add("status", "is resolved but an alert is firing (firing if any alert fires)")
    for index, alert in enumerate(payload.alerts):
        if alert.resolved and alert.ends_at is None:
            problems.add(f"alerts[{index}].endsAt", "a resolved alert must carry its resolution time")
    problems.raise_if_any()
    return payload


# -- mapping ------------------------------------------------------------------------------------------


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


def parse_alertmanager_webhook(body: bytes | str | Mapping[str, Any]) -> list[Alert]:
    """Parse, validate and map in one call: what POST /api/v2/alertmanager needs."""
    return alerts_from_payload(parse_alertmanager_payload(body))
