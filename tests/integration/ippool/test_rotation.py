"""Through the service: rotation on for a tenant of 6 IPs; over 90 simulated days (warmup included)
its warm capacity never falls under the floor once reached, rests are staggered and persisted."""

from __future__ import annotations

import pytest

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from ippool import jobs
from tests.integration.ippool.conftest import IpPoolService

pytestmark = pytest.mark.integration

FLOOR = 40_000


def test_six_ips_over_90_days_never_fall_under_the_floor(ippool: IpPoolService) -> None:
    ippool.call(
        "CreateSchedule",
        pb.CreateScheduleRequest(
            tenant_id="ulixai",
            schedule=pb.Schedule(
                schedule_id="short",
                steps=[
                    pb.WarmupStep(daily_volume=1000, sending_days=2),
                    pb.WarmupStep(daily_volume=5000, sending_days=2),
                    pb.WarmupStep(daily_volume=10000),
                ],
            ),
        ),
    )
    tenant = ippool.call(
        "UpdateTenant",
        pb.UpdateTenantRequest(
            tenant=pb.Tenant(
                tenant_id="ulixai",
                default_schedule_id="short",
                rotation=pb.RotationPolicy(
                    enabled=True, full_use_days=5, rest_days=2, warm_capacity_floor=FLOOR, rewarm_steps_back=1
                ),
            )
        ),
    )
    assert tenant.rotation.enabled and tenant.rotation.warm_capacity_floor == FLOOR
    addresses = [f"198.51.100.{n}" for n in range(1, 7)]
    for address in addresses:
        ippool.register(address, tenant="ulixai")

    capacities: list[int] = []
    resting_seen: set[str] = set()
    for _day in range(90):
        ips = ippool.call("ListIps", pb.ListIpsRequest(tenant_id="ulixai")).ips
        capacities.append(sum(ip.quota.daily for ip in ips if ip.state == pb.IP_STATE_WARM))
        for ip in ips:
            if ip.warmup.resting_until:
                assert ip.quota.daily == 0
                resting_seen.add(ip.address)
        sending = [pb.DeliveryStats(address=ip.address, sent=ip.quota.daily, delivered=ip.quota.daily) for ip in ips]
        ippool.stats(*[s for s in sending if s.sent])
        ippool.next_day()
        jobs.daily_warmup(ippool.app)

    reached = capacities.index(60_000)
    assert min(capacities[reached:]) >= FLOOR, capacities
    rests = {
        address: [d for d in ippool.decisions(address, pb.DECISION_KIND_ROTATION) if d.action == "REST"]
        for address in addresses
    }
    assert all(len(found) >= 3 for found in rests.values()), {a: len(r) for a, r in rests.items()}
    assert resting_seen == set(addresses)
    # Staggered: never two rests starting the same day would take the capacity under the floor.
    first_rest = sorted(min(d.day for d in found) for found in rests.values())
    assert len(set(first_rest)) > 1
    sample = rests[addresses[0]][0]
    assert "rotation" in sample.reason and sample.quota_after == 5000
