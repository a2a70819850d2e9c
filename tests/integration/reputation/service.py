"""The reputation service started in process by its real ServiceHost (gRPC, interceptor, outbox, jobs) on a
FakeClock, against a real rbldnsd whose zones carry local test names: every catalogue zone is retargeted with
EE_REPUTATION_ZONE_NAMES to `<key>.rbl.test`, as an operator points zones at a DQS key or a mirror.

IPs are put under watch the way production does it: an ip-pool IpRegistered event handed to the service's
own consumer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa
from google.protobuf import any_pb2
from google.protobuf.message import Message
from grpc_status import rpc_status
from prometheus_client import CollectorRegistry

from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from emailengine.platform.v1 import event_pb2
from emailengine.reputation.v1 import events_pb2
from emailengine.reputation.v1 import reputation_service_pb2 as pb
from emailengine.reputation.v1 import reputation_service_pb2_grpc as pb_grpc
from libs import events
from libs.clock import Clock, FakeClock
from libs.db import Database
from libs.rate_limit import InMemoryRateLimiter
from libs.tables import event_outbox
from reputation.adapters.unit_of_work import JobRunClaims, SqlReputationUnitOfWork
from reputation.app.context import ReputationContext
from reputation.app.metrics import ReputationMetrics
from reputation.bootstrap import DEFINITION
from reputation.config import DnsEnvSettings, ReputationSettings, build_config
from reputation.domain.zones import DEFAULT_CATALOGUE
from tests.harness.dns_servers import Rbldnsd
from tests.harness.in_process import ServiceDriver, in_process_service
from tests.unit.reputation.fakes import NoDns

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

LISTED_IP = "192.0.2.10"  # Spamhaus XBL (127.0.0.4) and SpamCop, both with a TXT reason
CLEAN_IP = "192.0.2.20"
RESOLVER_ERROR_IP = "192.0.2.66"  # Spamhaus answers 127.255.255.254
WHITELISTED_IP = "192.0.2.30"  # JunkEmailFilter 127.0.0.1
MAILSPIKE_L4_IP = "192.0.2.12"
LISTED_V6 = "2001:db8::10"  # Spamhaus CSS over IPv6 nibbles
CLEAN_V6 = "2001:db8::20"

WORLD = "world.rbl.test"  # lists every address, 127.0.0.1 included
DEAD = "dead.rbl.test"  # no longer lists its test point


def test_name(key: str) -> str:
    return f"{key}.rbl.test"


ZONE_NAMES = {zone.key: test_name(zone.key) for zone in DEFAULT_CATALOGUE.zones}

IP_DATA: dict[str, list[str]] = {
    "spamhaus-zen": [
        "127.0.0.2 :127.0.0.2:SBL test point",
        f"{LISTED_IP} :127.0.0.4:Listed in XBL, see https://check.spamhaus.org/query/ip/$",
        f"{RESOLVER_ERROR_IP} :127.255.255.254:",
    ],
    "spamcop": ["127.0.0.2", f"{LISTED_IP} :127.0.0.2:Blocked - see https://www.spamcop.net/bl.shtml?$"],
    "barracuda": ["127.0.0.2"],
    "psbl": ["127.0.0.2"],
    "mailspike": ["127.0.0.2", f"{MAILSPIKE_L4_IP} :127.0.0.11:"],
    "spamrats": ["127.0.0.2 :127.0.0.38:"],
    "uceprotect-1": ["127.0.0.2"],
    "manitu": ["127.0.0.2"],
    "junkemailfilter": ["127.0.0.2 :127.0.0.2:", "127.0.0.1 :127.0.0.1:", f"{WHITELISTED_IP} :127.0.0.1:white"],
}
DOMAIN_DATA: dict[str, list[str]] = {
    "spamhaus-dbl": ["dbltest.com :127.0.1.2:", "spammy.example :127.0.1.2:Spam domain $"],
    "surbl": ["test.surbl.org :127.0.0.254:"],
    "uribl": ["test.uribl.com :127.0.0.14:"],
}
# Live changes go to their own datasets of the same zones, so tests only ever add to / remove from them.
LIVE = {"spamhaus-zen": "zen_live", "spamcop": "spamcop_live"}
LIVE_DOMAINS = {"spamhaus-dbl": "dbl_live"}


def start_rbldnsd() -> Rbldnsd:
    server = Rbldnsd()
    for key, lines in IP_DATA.items():
        server.add_dataset(test_name(key), "ip4set", key, lines)
    server.add_dataset(test_name("spamhaus-zen"), "ip6trie", "zen_v6", [f"{LISTED_V6} :127.0.0.3:CSS listing of $"])
    for key, dataset in LIVE.items():
        server.add_dataset(test_name(key), "ip4set", dataset, ["192.0.2.255 :127.0.0.2:placeholder"])
    for key, lines in DOMAIN_DATA.items():
        server.add_dataset(test_name(key), "dnset", key, lines)
    for key, dataset in LIVE_DOMAINS.items():
        server.add_dataset(test_name(key), "dnset", dataset, ["placeholder.invalid :127.0.1.2:placeholder"])
    server.add_dataset(WORLD, "ip4trie", "world", ["0.0.0.0/0"])
    server.add_dataset(DEAD, "ip4set", "dead", [LISTED_IP])
    return server.start()


def rbl_env(nameserver: str, **extra: str) -> dict[str, str]:
    return {
        "EE_DNS_NAMESERVERS": nameserver,
        "EE_DNS_TIMEOUT": "1",
        "EE_REPUTATION_ZONE_NAMES": json.dumps(ZONE_NAMES),
        "EE_REPUTATION_SCAN_TICK_SECONDS": "3600",  # the tests call the job themselves
        # The tests check in loops; the limits have their own test.
        "EE_REPUTATION_CHECKS_PER_MINUTE": "6000",
        "EE_REPUTATION_CHECKS_BURST": "1000",
        "EE_REPUTATION_TENANT_SCANS_PER_HOUR": "3600",
        "EE_REPUTATION_TENANT_SCANS_BURST": "100",
        **extra,
    }


@dataclass
class ReputationService(ServiceDriver):
    """A running reputation service and a client: `call("CheckIp", request)` as admin or with `token=`."""

    stub: pb_grpc.ReputationServiceStub

    def call(self, method: str, request: Any, token: str | None = None, timeout: float = 15) -> Any:
        metadata = (("authorization", f"Bearer {token or self.token()}"),)
        return getattr(self.stub, method)(request, metadata=metadata, timeout=timeout)

    def check(self, address: str, token: str | None = None) -> pb.IpReputation:
        return self.call("CheckIp", pb.CheckIpRequest(address=address), token)

    def _deliver(self, tenant: str, event: Message) -> None:
        payload = any_pb2.Any()
        payload.Pack(event)
        envelope = event_pb2.EventEnvelope(
            event_id=str(uuid.uuid4()), source="ip-pool", tenant_id=tenant, payload=payload
        )
        assert self.host.runtime.consumer.handle(envelope.SerializeToString())

    def watch(self, address: str, tenant: str = "sos-expat", helo: str = "") -> None:
        self._deliver(tenant, ippool_events.IpRegistered(address=address, tenant_id=tenant, helo_hostname=helo))

    def retire(self, address: str, tenant: str = "sos-expat") -> None:
        self._deliver(
            tenant,
            ippool_events.IpStateChanged(
                address=address,
                tenant_id=tenant,
                previous_state=ippool_pb.IP_STATE_WARMING,
                state=ippool_pb.IP_STATE_RETIRED,
            ),
        )

    def outbox(self, cls: type[Message]) -> list[Any]:
        with self.db.transaction() as session:
            rows = session.execute(
                sa.select(event_outbox.c.envelope)
                .where(event_outbox.c.event_type == cls.DESCRIPTOR.full_name)
                .order_by(event_outbox.c.seq)
            ).all()
        return [events.unpack(event_pb2.EventEnvelope.FromString(r.envelope)) for r in rows]

    def listing_events(self, address: str) -> list[tuple[bool, str]]:
        return [(e.listed, e.zone_key) for e in self.outbox(events_pb2.IpListingChanged) if e.address == address]

    def domain_events(self, tenant: str) -> list[tuple[str, str, str, str, str]]:
        """(domain, check, subject, previous verdict, verdict) of each DomainCheckChanged of a tenant, in order."""
        return [
            (e.domain, e.check, e.subject, verdict_name(e.previous_verdict), verdict_name(e.verdict))
            for e in self.outbox(events_pb2.DomainCheckChanged)
            if e.tenant_id == tenant
        ]


def verdict_name(value: int) -> str:
    return pb.CheckVerdict.Name(value).removeprefix("CHECK_VERDICT_")


def statuses(reply: pb.IpReputation) -> dict[str, str]:
    return {z.zone_key: pb.ListingStatus.Name(z.status).removeprefix("LISTING_STATUS_") for z in reply.latest.zones}


def rpc_error(caught: Any) -> tuple[grpc.StatusCode, list[str]]:
    """(code, the field names of a BadRequest detail) of an RpcError."""
    from google.rpc import error_details_pb2

    error = caught.value
    status = rpc_status.from_call(error)
    fields: list[str] = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return error.code(), fields


def storage_only(db: Database, clock: Clock) -> ReputationContext:
    """The use cases' context over a real database, with a DNS port that must not be asked (tests of storage)."""
    return ReputationContext(
        unit_of_work=lambda: SqlReputationUnitOfWork(db, source="reputation", clock=clock),
        config=build_config(ReputationSettings(), DnsEnvSettings(nameservers="127.0.0.1:53")),
        clock=clock,
        dns=NoDns(),
        claims=JobRunClaims(db),
        metrics=ReputationMetrics(CollectorRegistry()),
        limiter=InMemoryRateLimiter(),
    )


@contextmanager
def running_reputation(
    data_dir: Path, env: dict[str, str], *, database_url: str = "", clock: FakeClock | None = None
) -> Iterator[ReputationService]:
    clock = clock or FakeClock(START)
    with in_process_service(DEFINITION, data_dir, clock=clock, env=env, database_url=database_url) as service:
        yield ReputationService(service, clock, pb_grpc.ReputationServiceStub(service.channel))
