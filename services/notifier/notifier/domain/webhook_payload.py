"""The JSON body generic webhooks receive: stable field names, canonical bytes (what gets signed), and the
signing secret's rule."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC

from notifier.domain.alert import Alert

WEBHOOK_BODY_TYPE = "emailengine.alerts"
WEBHOOK_BODY_VERSION = 1
MIN_SECRET_BYTES = 16


def webhook_secret_problem(secret: str | bytes) -> str | None:
    """Why this cannot sign a route's webhooks (None when it can)."""
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    if len(raw) < MIN_SECRET_BYTES:
        return f"must be at least {MIN_SECRET_BYTES} bytes"
    return None


def alert_to_json(alert: Alert) -> dict[str, object]:
    return {
        "tenant": alert.tenant,
        "severity": alert.severity.label,
        "dedup_key": alert.dedup_key,
        "title": alert.title,
        "text": alert.text,
        "source": alert.source,
        "labels": dict(sorted(alert.labels.items())),
        "resolved": alert.resolved,
        "url": alert.url,
        "occurred_at": alert.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


def webhook_body(alerts: Sequence[Alert], *, delivery_id: str) -> bytes:
    """`delivery_id` is stable across retries so receivers can drop the duplicates at-least-once implies."""
    if not alerts:
        raise ValueError("a webhook body needs at least one alert")
    document = {
        "type": WEBHOOK_BODY_TYPE,
        "version": WEBHOOK_BODY_VERSION,
        "delivery_id": delivery_id,
        "alerts": [alert_to_json(a) for a in alerts],
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
