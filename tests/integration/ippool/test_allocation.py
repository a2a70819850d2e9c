"""Through the service: 100 000 messages over a tenant's IPs never exceed any IP's remaining quota
or provider cap, give nothing to standby, paused or other tenants' IPs, and return the remainder with a plan;
a reserving allocation counts as used for the rest of the day."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from ippool import jobs
from tests.integration.ippool.conftest import IpPoolService, count
from tests.integration.ippool.test_warmup_job import _fast_schedule, healthy

pytestmark = pytest.mark.integration

GROUPS = ("GMAIL", "MICROSOFT", "YAHOO", "OTHER")
BY_PROVIDER = {"GMAIL": 45_000, "MICROSOFT": 25_000, "YAHOO": 10_000, "OTHER": 20_000}


def provider_name(value: int) -> str:
    return pb.ProviderGroup.Name(value).removeprefix("PROVIDER_GROUP_")


def request(volume: int = 100_000, **kwargs: object) -> pb.AllocateVolumeRequest:
    return pb.AllocateVolumeRequest(
        tenant_id="sos-expat",
        volume=volume,
        volume_by_provider=[
            pb.ProviderVolume(provider=pb.ProviderGroup.Value(f"PROVIDER_GROUP_{g}"), volume=v)
            for g, v in BY_PROVIDER.items()
        ],
        **kwargs,
    )


@pytest.fixture
def fleet(ippool: IpPoolService) -> dict[str, pb.Ip]:
    """sos-expat: 3 IPs at 50/day, 2 at 2 000/day (one half used today), one paused, one standby; ulixai: one."""
    _fast_schedule(ippool)
    for n in (10, 11, 12):
        ippool.register(f"192.0.2.{n}")
    for n in (20, 21):
        ippool.register(f"192.0.2.{n}", schedule_id="fast")
        ippool.stats(healthy(f"192.0.2.{n}", 1000))
    ippool.register("192.0.2.30", schedule_id="fast")
    ippool.register("192.0.2.31", schedule_id="fast")
    ippool.register("198.51.100.10", tenant="ulixai")
    ippool.next_day()
    jobs.daily_warmup(ippool.app)
    ippool.call("PauseIp", pb.PauseIpRequest(address="192.0.2.30"))
    ippool.call("RecordListing", pb.RecordListingRequest(address="192.0.2.31", zone="zen.spamhaus.org", listed=True))
    ippool.stats(
        pb.DeliveryStats(address="192.0.2.21", provider=pb.PROVIDER_GROUP_GMAIL, sent=700, delivered=690),
        pb.DeliveryStats(address="192.0.2.21", provider=pb.PROVIDER_GROUP_OTHER, sent=300, delivered=300),
    )
    ips = ippool.call("ListIps", pb.ListIpsRequest(page_size=100)).ips
    return {ip.address: ip for ip in ips}


def test_allocation_stays_within_quotas_and_caps_and_plans_the_rest(ippool: IpPoolService, fleet: dict) -> None:
    before = {
        a: (ip.quota.remaining_today, {provider_name(p.provider): p.remaining_today for p in ip.quota.by_provider})
        for a, ip in fleet.items()
    }
    assert before["192.0.2.21"][0] == 1000 and before["192.0.2.21"][1]["GMAIL"] == 100  # cap 800, 700 sent

    result = ippool.call("AllocateVolume", request())
    assert result.allocation_id and result.day == "2026-01-06" and result.requested == 100_000
    given = {a.address: a for a in result.allocations}
    assert set(given) == {"192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.20", "192.0.2.21"}
    for address, allocation in given.items():
        remaining, caps = before[address]
        assert 0 < allocation.volume <= remaining
        assert sum(v.volume for v in allocation.by_provider) == allocation.volume
        for part in allocation.by_provider:
            assert part.volume <= caps[provider_name(part.provider)], (address, part)
    assert {e.address for e in result.excluded} == {"192.0.2.30", "192.0.2.31"}
    assert "198.51.100.10" not in str(result)
    assert result.allocated_today == sum(a.volume for a in result.allocations)
    assert result.allocated_today + result.remainder == 100_000
    planned = sum(d.volume for d in result.plan)
    assert planned + result.unplanned == result.remainder
    assert result.plan[0].day_offset == 1 and result.plan[0].day == "2026-01-07"
    assert {provider_name(v.provider): v.volume for v in result.requested_by_provider} == BY_PROVIDER

    # Reserved: the IPs show it as used, and a second allocation only gets what is left.
    after = ippool.ip("192.0.2.20")
    assert after.quota.used_today == given["192.0.2.20"].volume
    second = ippool.call("AllocateVolume", request())
    for allocation in second.allocations:
        assert allocation.volume <= before[allocation.address][0] - given[allocation.address].volume


def test_validate_only_reserves_nothing_and_a_plain_volume_goes_to_other(ippool: IpPoolService, fleet: dict) -> None:
    preview = ippool.call(
        "AllocateVolume", pb.AllocateVolumeRequest(tenant_id="sos-expat", volume=500, validate_only=True)
    )
    assert preview.allocation_id == "" and preview.allocated_today == 500
    assert {provider_name(v.provider) for a in preview.allocations for v in a.by_provider} == {"OTHER"}
    assert count(ippool, "allocations") == 0
    assert ippool.ip("192.0.2.20").quota.used_today == 0
    # The part of `volume` not broken down by provider goes to OTHER.
    mixed = ippool.call(
        "AllocateVolume",
        pb.AllocateVolumeRequest(
            tenant_id="sos-expat",
            volume=1000,
            volume_by_provider=[pb.ProviderVolume(provider=pb.PROVIDER_GROUP_GMAIL, volume=400)],
            validate_only=True,
            plan_horizon_days=0,
        ),
    )
    assert {provider_name(v.provider): v.volume for v in mixed.requested_by_provider} == {"GMAIL": 400, "OTHER": 600}
    assert not mixed.plan


def test_bad_allocation_requests_name_the_field_and_reserve_nothing(ippool: IpPoolService, fleet: dict) -> None:
    def violations(req: pb.AllocateVolumeRequest, token: str | None = None) -> tuple[grpc.StatusCode, list[str]]:
        with pytest.raises(grpc.RpcError) as caught:
            ippool.call("AllocateVolume", req, token)
        status = rpc_status.from_call(caught.value)
        fields = []
        for detail in status.details if status else []:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                fields += [v.field for v in bad.field_violations]
        return caught.value.code(), fields

    assert violations(pb.AllocateVolumeRequest(tenant_id="sos-expat", volume=-5)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["volume"],
    )
    code, fields = violations(
        pb.AllocateVolumeRequest(
            tenant_id="sos-expat",
            volume_by_provider=[pb.ProviderVolume(volume=-1)],
            plan_horizon_days=1000,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields == ["plan_horizon_days", "volume_by_provider[0].provider", "volume_by_provider[0].volume"]
    assert violations(pb.AllocateVolumeRequest(tenant_id="nobody-here", volume=5))[0] == grpc.StatusCode.NOT_FOUND
    ulixai = ippool.token("ulixai")
    assert violations(request(), ulixai)[0] == grpc.StatusCode.PERMISSION_DENIED
    assert count(ippool, "allocations") == 0
