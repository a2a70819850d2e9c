"""ip-pool's scrape-time gauges over real rows, on SQLite and PostgreSQL: IPs of two tenants in every state, warmup
steps and quotas, today's use and allocations, the decisions of the last day; no label is an IP address."""

from __future__ import annotations

from datetime import timedelta

import pytest

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from tests.harness.metrics_samples import Samples, assert_no_address_label, sample, samples
from tests.integration.ippool.conftest import IpPoolService

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest) -> IpPoolService:
    return request.getfixturevalue("ippool" if request.param == "sqlite" else "ippool_pg")


def metrics(service: IpPoolService, prefix: str) -> Samples:
    return samples(service.host.runtime.metrics, prefix)


def ips(tenant: str, **counts: int) -> Samples:
    """emailengine_ippool_ips of a tenant: every state, 0 unless given."""
    states = ("WARMING", "WARM", "STANDBY", "PAUSED", "RETIRED")
    return {("emailengine_ippool_ips", (("state", s), ("tenant", tenant))): counts.get(s, 0) for s in states}


def per_tenant(name: str, tenant: str, value: float, **labels: str) -> Samples:
    return sample(name, value, tenant=tenant, **labels)


def decisions(tenant: str, action: str, rule: str, count: int) -> Samples:
    labels = {"kind": "LIFECYCLE", "action": action, "rule": rule}
    return per_tenant("emailengine_ippool_decisions_last_day", tenant, count, **labels)


def test_metrics_of_ips_in_every_state_of_three_tenants(service: IpPoolService) -> None:
    service.call("CreateTenant", pb.CreateTenantRequest(tenant=pb.Tenant(tenant_id="acme")))
    for n in range(1, 6):
        service.register(f"192.0.2.{n}", tenant="sos-expat")
    service.register("198.51.100.1", tenant="ulixai")
    service.register("198.51.100.2", tenant="ulixai")
    service.register("2001:db8::1", tenant="acme")
    service.call("PauseIp", pb.PauseIpRequest(address="192.0.2.2", reason="maintenance"))
    service.call("RetireIp", pb.RetireIpRequest(address="192.0.2.3", reason="returned to the provider"))
    for address, zone in (
        ("192.0.2.4", "zen.spamhaus.org"),
        ("198.51.100.2", "bl.spamcop.net"),
        ("2001:db8::1", "b.barracudacentral.org"),
    ):
        service.call("RecordListing", pb.RecordListingRequest(address=address, zone=zone, listed=True))
    service.stats(
        pb.DeliveryStats(address="192.0.2.1", provider=pb.PROVIDER_GROUP_GMAIL, sent=7, delivered=7),
        pb.DeliveryStats(address="192.0.2.5", provider=pb.PROVIDER_GROUP_YAHOO, sent=3, delivered=2, bounced=1),
    )
    allocation = service.call("AllocateVolume", pb.AllocateVolumeRequest(tenant_id="ulixai", volume=20))
    assert allocation.allocated_today == 20
    states = [service.ip(a).state for a in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "2001:db8::1")]
    assert states == [pb.IP_STATE_WARMING, pb.IP_STATE_PAUSED, pb.IP_STATE_RETIRED, *[pb.IP_STATE_STANDBY] * 2]
    daily = service.ip("192.0.2.1").quota.daily  # the default schedule's first step
    assert daily > 0

    found = metrics(service, "emailengine_ippool_")
    assert_no_address_label(found)
    expected: Samples = {
        # acme's only IP is in standby: its WARMING and WARM are there, at 0, for "no IP may send" to fire.
        **ips("acme", STANDBY=1),
        **ips("sos-expat", WARMING=2, STANDBY=1, PAUSED=1, RETIRED=1),
        **ips("ulixai", WARMING=1, STANDBY=1),
        **per_tenant("emailengine_ippool_ips_by_step", "sos-expat", 2, step="1"),
        **per_tenant("emailengine_ippool_ips_by_step", "ulixai", 1, step="1"),
        **per_tenant("emailengine_ippool_quota_today", "sos-expat", 2 * daily, step="1"),
        **per_tenant("emailengine_ippool_quota_today", "ulixai", daily, step="1"),
        # sos-expat sent 7 + 3; ulixai sent nothing but committed 20 by its allocation.
        **per_tenant("emailengine_ippool_used_today", "acme", 0),
        **per_tenant("emailengine_ippool_used_today", "sos-expat", 10),
        **per_tenant("emailengine_ippool_used_today", "ulixai", 20),
        **per_tenant("emailengine_ippool_allocated_today", "acme", 0),
        **per_tenant("emailengine_ippool_allocated_today", "sos-expat", 0),
        **per_tenant("emailengine_ippool_allocated_today", "ulixai", 20),
        **decisions("acme", "REGISTER", "ADMIN", 1),
        **decisions("acme", "STANDBY", "LISTING", 1),
        **decisions("sos-expat", "REGISTER", "ADMIN", 5),
        **decisions("sos-expat", "PAUSE", "ADMIN", 1),
        **decisions("sos-expat", "RETIRE", "ADMIN", 1),
        **decisions("sos-expat", "STANDBY", "LISTING", 1),
        **decisions("ulixai", "REGISTER", "ADMIN", 2),
        **decisions("ulixai", "STANDBY", "LISTING", 1),
    }
    assert found == expected
    assert metrics(service, "emailengine_metrics_read_failures") == {}

    # A day and a minute later the decisions have left the window; the IPs are still counted.
    service.clock.advance(timedelta(days=1, minutes=1))
    later = metrics(service, "emailengine_ippool_")
    assert not [key for key in later if key[0] == "emailengine_ippool_decisions_last_day"]
    assert {k: v for k, v in later.items() if k[0] == "emailengine_ippool_ips"} == {
        **ips("acme", STANDBY=1),
        **ips("sos-expat", WARMING=2, STANDBY=1, PAUSED=1, RETIRED=1),
        **ips("ulixai", WARMING=1, STANDBY=1),
    }
