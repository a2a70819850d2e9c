"""The campaign gateway's client of ip-pool (`IpPoolPeer`) against the running ip-pool, as the gateway calls it with
its service identity: the customer's provider groups and deferrals in the day totals, a campaign's purpose and pool
in allocation."""

from __future__ import annotations

from datetime import date

import pytest

from campaign_gateway.adapters.ippool_peer import DayTotals, IpPoolPeer
from emailengine.ippool.v1 import ippool_service_pb2 as pb
from ippool import jobs
from libs.service_client import ServiceClients
from tests.integration.ippool.conftest import IpPoolService

pytestmark = pytest.mark.integration


def test_the_gateway_sends_every_provider_group_with_deferrals_and_allocates_by_purpose(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.10")
    ippool.register("192.0.2.11", purpose="transactional")
    peer = IpPoolPeer(ServiceClients(ippool.service.settings, "campaign-gateway"))
    today = date.fromisoformat(ippool.ip("192.0.2.10").quota.day)
    totals = [
        DayTotals(
            "192.0.2.10", today, "LAPOSTE", sent=5, delivered=5, bounced=0, complained=0, throttled=2, deferred=3
        ),
        DayTotals("192.0.2.10", today, "GMAIL", sent=20, delivered=20, bounced=0, complained=0, throttled=0),
    ]
    assert peer.record_delivery_stats(totals) == 2
    caps = peer.get_ip("192.0.2.10", tenant_id="sos-expat").provider_caps
    assert (caps["LAPOSTE"], caps["ICLOUD"], caps["OTHER"]) == (5, 5, 50)

    marketing = peer.allocate(tenant_id="sos-expat", volume=100, by_provider={"ORANGE": 10}, validate_only=True)
    assert [a.address for a in marketing.allocations] == ["192.0.2.10"]
    assert ("192.0.2.11", "transactional IP: takes no marketing volume") in marketing.excluded
    receipts = peer.allocate(
        tenant_id="sos-expat", volume=60, by_provider={}, validate_only=True, purpose="transactional", pool="default"
    )
    assert {a.address: a.volume for a in receipts.allocations} == {"192.0.2.11": 50, "192.0.2.10": 10}

    ippool.next_day()
    jobs.daily_warmup(ippool.app)
    figures = ippool.decisions("192.0.2.10", pb.DECISION_KIND_WARMUP)[0].figures
    laposte = next(p for p in figures.by_provider if p.provider == "LAPOSTE")
    assert (laposte.deferred, laposte.throttled, laposte.attempts) == (3, 2, 8)
