"""Builders shared by the notifier's integration tests: events as other services publish them, payloads."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from google.protobuf import any_pb2
from google.protobuf.message import Message

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from emailengine.platform.v1 import event_pb2
from emailengine.reputation.v1 import events_pb2 as reputation_events
from libs.db import Database
from libs.events import EventConsumer
from notifier import bootstrap
from notifier.adapters.tables import routes
from notifier.bootstrap import Notifier


def envelope(event: Message, *, source: str, tenant: str, occurred_at: datetime | None = None) -> bytes:
    payload = any_pb2.Any()
    payload.Pack(event)
    message = event_pb2.EventEnvelope(event_id=str(uuid.uuid4()), source=source, tenant_id=tenant, payload=payload)
    message.occurred_at.FromDatetime(occurred_at or datetime.now(UTC))
    return message.SerializeToString()


def listing_event(
    address: str = "203.0.113.7",
    *,
    zone: str = "zen.spamhaus.org",
    listed: bool = True,
    tenant: str = "sos-expat",
    reason: str = "127.0.0.2 from zen.spamhaus.org",
    severity: int = 0,
) -> bytes:
    event = reputation_events.IpListingChanged(
        address=address, tenant_id=tenant, listed=listed, zone=zone, reason=reason, severity=severity
    )
    return envelope(event, source="reputation", tenant=tenant)


def state_event(address: str, previous: str, state: str, *, tenant: str = "sos-expat", reason: str = "") -> bytes:
    event = ippool_events.IpStateChanged(
        address=address,
        tenant_id=tenant,
        previous_state=ippool_pb.IpState.Value(f"IP_STATE_{previous}"),
        state=ippool_pb.IpState.Value(f"IP_STATE_{state}"),
        reason=reason,
    )
    return envelope(event, source="ip-pool", tenant=tenant)


def consumer_for(notifier: Notifier) -> EventConsumer:
    """The notifier's consumer group, subscribed as the service's bootstrap does."""
    consumer = EventConsumer(group="notifier", db=notifier.unit_of_work().db)  # type: ignore[attr-defined]
    consumer.subscribe(bootstrap.subscriptions(notifier))
    return consumer


def am_alert(name: str, *, status: str = "firing", fingerprint: str, **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": f"{name} summary", "description": "details < & >"},
        "startsAt": "2026-01-05T09:00:00.123456789Z",
        "endsAt": "2026-01-05T09:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up+%3D%3D+0",
        "fingerprint": fingerprint,
    }


def am_payload(*alerts: dict[str, Any], **extra: Any) -> bytes:
    """Alertmanager's webhook body (version 4), with room for the fields newer versions add."""
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    body: dict[str, Any] = {
        "version": "4",
        "groupKey": '{}:{alertname=~".*"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "email-engine",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": list(alerts),
    }
    body.update(extra)
    return json.dumps(body).encode()


def add_route_an_older_version_accepted(db: Database, *, secret: str | None = None) -> None:
    """A webhook route stored with a URL an older version accepted (`http://h:99999/x`, a port out of range)."""
    values: dict[str, Any] = {
        "route_id": "old-hook",
        "tenant_id": "sos-expat",
        "channel": "webhook",
        "target": "http://h:99999/x",
        "min_severity": 1,
        "create_time": datetime(2026, 1, 1, tzinfo=UTC),
    }
    if secret is not None:
        values["secret"] = secret
    with db.transaction() as session:
        session.execute(sa.insert(routes).values(**values))
