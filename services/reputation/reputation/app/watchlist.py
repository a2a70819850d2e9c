"""Which IPs the reputation service watches, learnt from the ip-pool's events."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.platform.v1 import event_pb2
from reputation.adapters.tables import monitored_ips

_RETIRED = (
    ippool_events.IpStateChanged.DESCRIPTOR.fields_by_name["state"].enum_type.values_by_name["IP_STATE_RETIRED"].number
)


def on_ip_registered(session: Session, envelope: event_pb2.EventEnvelope, event: ippool_events.IpRegistered) -> None:
    exists = session.execute(sa.select(monitored_ips.c.address).where(monitored_ips.c.address == event.address)).first()
    values = {"tenant_id": event.tenant_id, "helo_hostname": event.helo_hostname, "active": True}
    if exists:
        session.execute(monitored_ips.update().where(monitored_ips.c.address == event.address).values(**values))
    else:
        session.execute(monitored_ips.insert().values(address=event.address, registered_at=datetime.now(UTC), **values))


def on_ip_state_changed(
    session: Session, envelope: event_pb2.EventEnvelope, event: ippool_events.IpStateChanged
) -> None:
    if event.state == _RETIRED:
        session.execute(monitored_ips.update().where(monitored_ips.c.address == event.address).values(active=False))


def watched_ips(session: Session, tenant_id: str = "") -> list[tuple[str, str]]:
    query = sa.select(monitored_ips.c.address, monitored_ips.c.tenant_id).where(monitored_ips.c.active.is_(True))
    if tenant_id:
        query = query.where(monitored_ips.c.tenant_id == tenant_id)
    return [(r.address, r.tenant_id) for r in session.execute(query.order_by(monitored_ips.c.address))]
