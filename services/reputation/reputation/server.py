"""reputation service entry point: the gRPC servicer and the wiring of its use cases."""

from __future__ import annotations

from pathlib import Path

import grpc
import sqlalchemy as sa

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.reputation.v1 import reputation_service_pb2 as pb
from emailengine.reputation.v1 import reputation_service_pb2_grpc as pb_grpc
from libs.db import Database
from libs.errors import InvalidArgument, NotFound
from libs.interceptor import current_caller
from libs.server import Runtime, ServiceDefinition
from reputation.adapters.tables import monitored_ips, scan_results
from reputation.app import watchlist

# Until the scanner is wired: the default zones by name.
_DEFAULT_ZONES = (
    ("zen.spamhaus.org", "Spamhaus ZEN"),
    ("bl.spamcop.net", "SpamCop"),
    ("b.barracudacentral.org", "Barracuda"),
    ("psbl.surriel.com", "PSBL"),
    ("bl.mailspike.net", "Mailspike"),
    ("all.spamrats.com", "SpamRATS"),
    ("dnsbl-1.uceprotect.net", "UCEPROTECT level 1"),
    ("ix.dnsbl.manitu.net", "Manitu"),
    ("hostkarma.junkemailfilter.com", "JunkEmailFilter"),
)


class ReputationServicer(pb_grpc.ReputationServiceServicer):
    def __init__(self, db: Database):
        self._db = db

    def GetIpReputation(self, request: pb.GetIpReputationRequest, context: grpc.ServicerContext) -> pb.IpReputation:
        import ipaddress

        try:
            address = str(ipaddress.ip_address(request.address))
        except ValueError:
            raise InvalidArgument("address", f"{request.address!r} is not an IPv4 or IPv6 address") from None
        with self._db.transaction() as session:
            row = session.execute(sa.select(monitored_ips).where(monitored_ips.c.address == address)).first()
            if row is None:
                raise NotFound("ip", address)
            current_caller().require_read(row.tenant_id)
            results = session.execute(
                sa.select(scan_results.c.result)
                .where(scan_results.c.address == address)
                .order_by(scan_results.c.scan_time.desc())
                .limit((request.history_size or 20) + 1)
            ).all()
        scans = [pb.ScanResult.FromString(r.result) for r in results]
        reply = pb.IpReputation(address=address, tenant_id=row.tenant_id, history=scans[1:])
        if scans:
            reply.latest.CopyFrom(scans[0])
        return reply

    def ListZones(self, request: pb.ListZonesRequest, context: grpc.ServicerContext) -> pb.ListZonesResponse:
        return pb.ListZonesResponse(zones=[pb.Zone(zone=z, name=n, kind="ip", healthy=True) for z, n in _DEFAULT_ZONES])


def wire(rt: Runtime) -> None:
    rt.consumer.on(ippool_events.IpRegistered, watchlist.on_ip_registered)
    rt.consumer.on(ippool_events.IpStateChanged, watchlist.on_ip_state_changed)
    pb_grpc.add_ReputationServiceServicer_to_server(ReputationServicer(rt.db), rt.grpc_server)


DEFINITION = ServiceDefinition(
    name="reputation",
    migrations=Path(__file__).parent / "adapters" / "migrations",
    wire=wire,
)
