"""Zone health as last checked (RFC 5782 §7), and ZoneHealthChanged once per change of status.

Statuses: healthy, unhealthy (answers wrongly: dead, listing the world, error codes; its answers are
ignored), unreachable (no answer for the test points; results are unknown). A zone first seen healthy
publishes nothing; any later change of status publishes one event, in the transaction that stores it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from emailengine.reputation.v1 import events_pb2
from libs import events
from libs.db import Database
from reputation.adapters.tables import zone_health
from reputation.app import protos
from reputation.app.listings import SOURCE, aware, lock_rows
from reputation.domain.dnsbl import ZoneHealth

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthRow:
    status: str
    reason: str
    checked_at: datetime | None
    changed_at: datetime | None


UNCHECKED = HealthRow("unchecked", "", None, None)


def record_health(db: Database, health: Mapping[str, ZoneHealth], now: datetime) -> list[str]:
    """Stores each zone's health; returns the keys whose status changed (one event each)."""
    if not health:
        return []
    keys = sorted(health)
    _ensure_rows(db, keys, now)
    changed: list[str] = []
    with db.transaction() as session:
        lock_rows(session, db.is_postgres, zone_health, zone_health.c.zone_key, keys)
        rows = {r.zone_key: r for r in session.execute(sa.select(zone_health).where(zone_health.c.zone_key.in_(keys)))}
        for key in keys:
            item = health[key]
            status = protos.health_status(item)
            row = rows[key]
            values: dict[str, object] = {"status": status, "reason": item.reason, "checked_at": now}
            if status != row.status:
                values["changed_at"] = now
                if not (row.status == "unchecked" and status == "healthy"):
                    _publish(session, item, row.status, status, now)
                    changed.append(key)
                    log.warning(
                        "zone health changed",
                        extra={"zone": key, "from": row.status, "to": status, "reason": item.reason},
                    )
            session.execute(zone_health.update().where(zone_health.c.zone_key == key).values(**values))
    return changed


def _ensure_rows(db: Database, keys: list[str], now: datetime) -> None:
    with db.transaction() as session:
        have = set(session.execute(sa.select(zone_health.c.zone_key).where(zone_health.c.zone_key.in_(keys))).scalars())
    for key in keys:
        if key in have:
            continue
        try:
            with db.transaction() as session:
                session.execute(
                    zone_health.insert().values(
                        zone_key=key, status="unchecked", reason="", checked_at=now, changed_at=now
                    )
                )
        except IntegrityError:
            pass  # another replica made it first


def _publish(session: Session, item: ZoneHealth, previous: str, status: str, now: datetime) -> None:
    event = events_pb2.ZoneHealthChanged(
        zone=protos.public_zone_name(item.zone_key, item.zone_name),
        zone_key=item.zone_key,
        healthy=item.healthy,
        previous_status=protos.HEALTH_STATUS[previous],
        status=protos.HEALTH_STATUS[status],
        reason=item.reason,
        checked_at=protos.timestamp(now),
    )
    events.publish(session, source=SOURCE, tenant_id="", event=event, now=now)


def health_rows(session: Session) -> dict[str, HealthRow]:
    return {
        r.zone_key: HealthRow(r.status, r.reason, aware(r.checked_at), aware(r.changed_at))
        for r in session.execute(sa.select(zone_health))
    }
