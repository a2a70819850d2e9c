"""Which IPs the reputation service watches, learnt from ip-pool's events.

IpRegistered adds (or re-activates) an IP with its tenant and HELO name; IpStateChanged to RETIRED stops its
periodic scans. History and listing state are kept. Each handler applies one event inside the unit of work the
event consumer opened (which holds the event's inbox row), so the effect and the "handled" mark commit together.
"""

from __future__ import annotations

import logging

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.platform.v1 import event_pb2
from libs.errors import InvalidArgument
from reputation.app.context import UseCases
from reputation.app.unit_of_work import ReputationUnitOfWork
from reputation.domain.validation import parse_ip
from reputation.domain.watch import WatchedIp

log = logging.getLogger(__name__)

_RETIRED = ippool_events.IpStateChanged.DESCRIPTOR.fields_by_name["state"].enum_type.values_by_name["IP_STATE_RETIRED"]


class Watchlist(UseCases):
    def on_ip_registered(
        self, uow: ReputationUnitOfWork, envelope: event_pb2.EventEnvelope, event: ippool_events.IpRegistered
    ) -> None:
        address = _canonical(event.address, envelope)
        if address is not None:
            uow.ips.register(WatchedIp(address, event.tenant_id, event.helo_hostname), self._clock.now())

    def on_ip_state_changed(
        self, uow: ReputationUnitOfWork, envelope: event_pb2.EventEnvelope, event: ippool_events.IpStateChanged
    ) -> None:
        if leaves_alone(event):
            return
        address = _canonical(event.address, envelope)
        if address is not None:
            uow.ips.retire(address)


def leaves_alone(event: ippool_events.IpStateChanged) -> bool:
    """Whether `on_ip_state_changed` does nothing with the event (only a retirement matters here); the event
    consumer then only marks it handled (`Subscriptions.no_effect`)."""
    return event.state != _RETIRED.number


def _canonical(address: str, envelope: event_pb2.EventEnvelope) -> str | None:
    try:
        return str(parse_ip(address))
    except InvalidArgument:
        log.warning("event with a malformed IP ignored", extra={"event_id": envelope.event_id, "address": address})
        return None
