"""ip-pool and the campaign-gateway in this process (real gRPC, real hosts, the in-process event bus), the
gateway reaching the two sshd PowerMTA nodes with the stand-in `pmta`: what the delivery tests drive."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from campaign_gateway.bootstrap import DEFINITION as GATEWAY
from emailengine.campaign.v1 import campaign_service_pb2_grpc as campaign_pb_grpc
from emailengine.campaign.v1 import delivery_service_pb2 as pb
from emailengine.campaign.v1 import delivery_service_pb2_grpc as pb_grpc
from emailengine.ippool.v1 import ippool_service_pb2 as ippool_pb
from libs import events
from libs.clock import FakeClock
from libs.tables import event_outbox
from tests.harness.in_process import environment, in_process_service
from tests.harness.ssh_server import KeyPair, PmtaNodeServer
from tests.integration.ippool.conftest import IpPoolService, running_ippool

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TENANT = "sos-expat"


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


@dataclass
class Delivery:
    """Both services running; `call` reaches the DeliveryService as admin (or with `token=`)."""

    ippool: IpPoolService
    gateway: Any  # InProcessService
    clock: FakeClock
    stub: pb_grpc.DeliveryServiceStub
    nodes: list[PmtaNodeServer]
    client_key: KeyPair
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def app(self) -> Any:
        return self.gateway.host.runtime.app

    def call(self, method: str, request: Any, token: str | None = None, metadata: tuple = ()) -> Any:
        auth = (("authorization", f"Bearer {token or self.gateway.token()}"),)
        return getattr(self.stub, method)(request, metadata=auth + metadata, timeout=60)

    def call_campaigns(self, method: str, request: Any, token: str | None = None) -> Any:
        """The same service's CampaignService (the suppression lists are there)."""
        auth = (("authorization", f"Bearer {token or self.gateway.token()}"),)
        stub = campaign_pb_grpc.CampaignServiceStub(self.gateway.channel)
        return getattr(stub, method)(request, metadata=auth, timeout=60)

    def register_node(self, node: PmtaNodeServer, **overrides: Any) -> pb.PmtaNode:
        values = node.registration(**overrides)
        created = self.call("CreatePmtaNode", pb.CreatePmtaNodeRequest(pmta_node=pb.PmtaNode(**values)))
        self.tokens[node.name] = created.forwarder_token
        return created

    def register_ip(self, address: str, node: str, tenant: str = TENANT) -> ippool_pb.Ip:
        last = address.split(".")[-1]
        return self.ippool.register(address, tenant=tenant, pmta_node=node, helo_hostname=f"mta{last}.example.net")

    def events_of(self, cls: type) -> list[Any]:
        with self.gateway.db.transaction() as session:
            rows = session.execute(
                sa.select(event_outbox.c.envelope)
                .where(event_outbox.c.event_type == cls.DESCRIPTOR.full_name)
                .order_by(event_outbox.c.seq)
            ).all()
        return [events.unpack(events.event_pb2.EventEnvelope.FromString(row.envelope)) for row in rows]


def gateway_env(client_key: KeyPair, **extra: str) -> dict[str, str]:
    env = {
        "EE_CAMPAIGN_GATEWAY_PMTA_SSH_KEY_FILE": str(client_key.private_path),
        "EE_CAMPAIGN_GATEWAY_PMTA_CONNECT_ATTEMPTS": "2",
        "EE_CAMPAIGN_GATEWAY_PMTA_CONNECT_TIMEOUT_SECONDS": "5",
        # The tests run the periodic work themselves.
        "EE_CAMPAIGN_GATEWAY_PMTA_DEPLOY_INTERVAL_SECONDS": "86400",
        "EE_CAMPAIGN_GATEWAY_ACCOUNTING_PULL_INTERVAL_SECONDS": "86400",
        "EE_CAMPAIGN_GATEWAY_ACCOUNTING_STATS_INTERVAL_SECONDS": "86400",
        "EE_CAMPAIGN_GATEWAY_BOUNCE_DELIVERY_POLL_SECONDS": "300",
        "EE_CAMPAIGN_GATEWAY_BOUNCE_RETRY_MAX_DELAY_SECONDS": "1",
        # The test webhook receiver listens on loopback.
        "EE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
    }
    env.update(extra)
    return env


@contextmanager
def running_delivery(
    data_dir: Path,
    nodes: list[PmtaNodeServer],
    client_key: KeyPair,
    *,
    database_url: str = "",
    ippool_database_url: str = "",
    env: dict[str, str] | None = None,
) -> Iterator[Delivery]:
    clock = FakeClock(START)
    with running_ippool(data_dir, database_url=ippool_database_url, clock=clock) as ippool:
        settings = gateway_env(client_key, **(env or {}))
        settings["EE_IPPOOL_GRPC_PORT"] = str(ippool.settings.ippool_grpc_port)
        with (
            environment(settings),
            in_process_service(GATEWAY, data_dir, clock=clock, env=settings, database_url=database_url) as gateway,
        ):
            yield Delivery(ippool, gateway, clock, pb_grpc.DeliveryServiceStub(gateway.channel), nodes, client_key)
