"""Which IPs the reputation service watches, learnt from the ip-pool's events.

IpRegistered adds (or re-activates) an IP with its tenant and HELO name; IpStateChanged to RETIRED stops
its periodic scans. History and listing state are kept.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.platform.v1 import event_pb2
from libs.errors import InvalidArgument
from reputation.adapters.tables import monitored_ips
from reputation.domain.validation import parse_ip

log = logging.getLogger(__name__)

_RETIRED = (
    ippool_events.IpStateChanged.DESCRIPTOR.fields_by_name["state"].enum_type.values_by_name["IP_STATE_RETIRED"].number
)


def _canonical(address: str, envelope: event_pb2.EventEnvelope) -> str | None:
    try:
        return str(parse_ip(address))
    except InvalidArgument:
        log.warning("event with a malformed IP ignored", extra={"event_id": envelope.event_id, "address": address})
        return None


def on_ip_registered(session: Session, envelope: event_pb2.EventEnvelope, event: ippool_events.IpRegistered) -> None:
    address = _canonical(event.address, envelope)
    if address is None:
        return
    exists = session.execute(sa.select(monitored_ips.c.address).where(monitored_ips.c.address == address)).first()
    values = {"tenant_id": event.tenant_id, "helo_hostname": event.helo_hostname, "active": True}
    if exists:
        session.execute(monitored_ips.update().where(monitored_ips.c.address == address).values(**values))
    else:
        session.execute(monitored_ips.insert().values(address=address, registered_at=datetime.now(UTC), **values))


def on_ip_state_changed(
    session: Session, envelope: event_pb2.EventEnvelope, event: ippool_events.IpStateChanged
) -> None:
    if event.state != _RETIRED:
        return
    address = _canonical(event.address, envelope)
    if address is not None:
        session.execute(monitored_ips.update().where(monitored_ips.c.address == address).values(active=False))
