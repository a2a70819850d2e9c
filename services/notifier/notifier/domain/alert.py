"""The alert: what one producer wants a human to know, validated once at the edge."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from types import MappingProxyType

from libs.errors import InvalidArgument, Violations

#: Alerts with this tenant concern the platform itself (a service down, a Prometheus rule): admin routes only.
PLATFORM_TENANT = ""

TENANT_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
LABEL_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]{0,127}$")

MAX_DEDUP_KEY = 300
MAX_TITLE = 500
MAX_TEXT = 65_536
MAX_SOURCE = 100
MAX_LABELS = 64
MAX_LABEL_VALUE = 1_024
MAX_URL = 2_048


class Severity(IntEnum):
    """Ordered so that routes can say "this severity or worse"."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Severity:
        """Strict parse of `info` / `warning` / `critical` (any case); raises ValueError otherwise."""
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {value!r}: expected info, warning or critical") from None


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LONE_SURROGATES = re.compile(r"[\ud800-\udfff]")


def sanitize_text(text: str) -> str:
    """Make producer text safe to encode and send: one newline style, no control characters.

    Lone surrogates (possible in Python strings from bad decoding) would make UTF-8 encoding fail
    at send time, long after the alert was accepted; they become U+FFFD here instead.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL_CHARS.sub("", text)
    text = _LONE_SURROGATES.sub("\ufffd", text)
    return unicodedata.normalize("NFC", text)


def cut_text(text: str, limit: int, marker: str = "…") -> str:
    """Shorten to at most `limit` code points, ending with `marker` when something was dropped."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


@dataclass(frozen=True)
class Alert:
    """One thing a human should hear about.

    `tenant` is PLATFORM_TENANT ("") for platform-wide alerts, which only admin routes receive.
    `dedup_key` identifies "the same alert" within a tenant: a second alert with the same key inside
    the dedup window is suppressed and counted.
    """

    tenant: str
    severity: Severity
    dedup_key: str
    title: str
    text: str
    source: str
    occurred_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    resolved: bool = False
    url: str = ""

    def __post_init__(self) -> None:
        # Frozen and hashable-by-identity is not enough: labels must not change under the outbox's feet.
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))

    def __deepcopy__(self, memo: dict[int, object]) -> Alert:
        return self  # immutable: a copy would be the same alert

    @classmethod
    def create(
        cls,
        *,
        tenant: str,
        severity: Severity | str,
        dedup_key: str,
        title: str,
        text: str = "",
        source: str,
        occurred_at: datetime,
        labels: Mapping[str, str] | None = None,
        resolved: bool = False,
        url: str = "",
    ) -> Alert:
        """Validate producer input (SendAlert, events) and name every bad field at once."""
        violations = Violations()
        parsed_severity: Severity = Severity.INFO
        if isinstance(severity, Severity):
            parsed_severity = severity
        else:
            try:
                parsed_severity = Severity.parse(str(severity))
            except ValueError as exc:
                violations.add("severity", str(exc))
        if tenant != PLATFORM_TENANT and not TENANT_PATTERN.match(tenant):
            violations.add("tenant", "must be a tenant id (lowercase letters, digits, '-') or empty for platform")
        dedup_key = dedup_key.strip()
        if not dedup_key:
            violations.add("dedup_key", "must not be empty")
        elif len(dedup_key) > MAX_DEDUP_KEY or not dedup_key.isprintable():
            violations.add("dedup_key", f"must be printable and at most {MAX_DEDUP_KEY} characters")
        title = sanitize_text(title).strip()
        text = sanitize_text(text).strip()
        if not title:
            # Producers often send only a text: its first line is the headline.
            title = cut_text(text.split("\n", 1)[0].strip(), MAX_TITLE)
        if not title:
            violations.add("text", "title or text must not be empty")
        elif len(title) > MAX_TITLE:
            violations.add("title", f"must be at most {MAX_TITLE} characters")
        if len(text) > MAX_TEXT:
            violations.add("text", f"must be at most {MAX_TEXT} characters")
        source = source.strip()
        if not source:
            violations.add("source", "must not be empty")
        elif len(source) > MAX_SOURCE or not source.isprintable():
            violations.add("source", f"must be printable and at most {MAX_SOURCE} characters")
        if occurred_at.tzinfo is None:
            violations.add("occurred_at", "must be timezone-aware")
        clean_labels = _validate_labels(labels or {}, violations)
        if url and (len(url) > MAX_URL or not re.match(r"^https?://[^\s]+$", url)):
            violations.add("url", "must be an http(s) URL without spaces")
        violations.raise_if_any()
        return cls(
            tenant=tenant,
            severity=parsed_severity,
            dedup_key=dedup_key,
            title=title,
            text=text,
            source=source,
            occurred_at=occurred_at,
            labels=clean_labels,
            resolved=resolved,
            url=url,
        )

    @property
    def is_platform(self) -> bool:
        return self.tenant == PLATFORM_TENANT


def _validate_labels(labels: Mapping[str, str], violations: Violations) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        violations.add("labels", f"at most {MAX_LABELS} labels")
        return {}
    clean: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY_PATTERN.match(key):
            violations.add(f"labels[{key!r}]", "label name must match [A-Za-z_][A-Za-z0-9_.-/]*")
            continue
        if not isinstance(value, str):
            violations.add(f"labels.{key}", "label value must be a string")
            continue
        value = sanitize_text(value)
        if len(value) > MAX_LABEL_VALUE:
            violations.add(f"labels.{key}", f"label value must be at most {MAX_LABEL_VALUE} characters")
            continue
        clean[key] = value
    return clean


def require_aware(value: datetime, name: str) -> None:
    """Pure functions here compare instants; a naive datetime would silently mean local time."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(name, "must be a timezone-aware datetime")
