"""The ip-pool API over gRPC: registration and listing, bad input naming the field and tenant isolation
with nothing half-written, tenant policy by field mask, schedules, signals."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from ippool import jobs
from libs.auth import Role
from tests.integration.ippool.conftest import IpPoolService, count

pytestmark = pytest.mark.integration

TABLES = ("ips", "ip_decisions", "event_outbox", "delivery_stats", "schedules", "ip_listings", "allocations")


def failure(service: IpPoolService, method: str, request: object, token: str | None = None) -> tuple[str, list[str]]:
    """The status code name and the BadRequest field names of a call that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        service.call(method, request, token)
    status = rpc_status.from_call(caught.value)
    fields: list[str] = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return caught.value.code().name, fields


def snapshot(service: IpPoolService) -> dict[str, int]:
    return {table: count(service, table) for table in TABLES}


def test_register_get_and_list_with_filters_and_pages(ippool: IpPoolService) -> None:
    created = ippool.register("192.0.2.10", purpose="marketing")
    assert (created.state, created.warmup.sending_day, created.quota.daily) == (pb.IP_STATE_WARMING, 1, 50)
    assert (created.tenant_id, created.purpose, created.pool, created.warmup.schedule_id) == (
        "sos-expat",
        "marketing",
        "default",
        "default",
    )
    assert created.quota.remaining_today == 50 and created.quota.hourly == 3  # ceil(50 / 24)
    assert ippool.ip("192.0.2.10") == created
    # Another spelling of the same address is the same IP, in any tenant.
    assert failure(ippool, "CreateIp", pb.CreateIpRequest(address="::ffff:192.0.2.10", tenant_id="ulixai"))[0] == (
        "ALREADY_EXISTS"
    )
    six = ippool.register("2001:DB8::0010", purpose="transactional", helo_hostname="MTA1.Example.com.")
    assert (six.address, six.helo_hostname, six.purpose) == ("2001:db8::10", "mta1.example.com", "transactional")
    for n in range(11, 16):
        ippool.register(f"192.0.2.{n}")
    ippool.register("198.51.100.10", tenant="ulixai")
    ippool.call("PauseIp", pb.PauseIpRequest(address="192.0.2.12"))

    paused = ippool.call("ListIps", pb.ListIpsRequest(tenant_id="sos-expat", state=pb.IP_STATE_PAUSED)).ips
    assert [ip.address for ip in paused] == ["192.0.2.12"]
    seen, token = [], ""
    while True:
        page = ippool.call("ListIps", pb.ListIpsRequest(tenant_id="sos-expat", page_size=3, page_token=token))
        assert len(page.ips) <= 3
        seen += [ip.address for ip in page.ips]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen) and len(seen) == 7 and "198.51.100.10" not in seen
    ulixai = ippool.token("ulixai")
    assert [ip.address for ip in ippool.call("ListIps", pb.ListIpsRequest(), ulixai).ips] == ["198.51.100.10"]
    assert failure(ippool, "ListIps", pb.ListIpsRequest(tenant_id="sos-expat"), ulixai)[0] == "PERMISSION_DENIED"


def test_bad_input_names_the_field_and_writes_nothing(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.10")
    before = snapshot(ippool)
    cases = [
        (pb.CreateIpRequest(address="300.1.2.3", tenant_id="sos-expat"), ["address"]),
        (pb.CreateIpRequest(address="127.0.0.1", tenant_id="sos-expat"), ["address"]),
        (pb.CreateIpRequest(address="192.0.2.50", tenant_id="nobody-here"), ["tenant_id"]),
        (pb.CreateIpRequest(address="192.0.2.50", tenant_id="sos-expat", schedule_id="nope"), ["schedule_id"]),
        (
            pb.CreateIpRequest(address="x", tenant_id="Bad Tenant", purpose="spam", helo_hostname="1.2.3.4"),
            ["address", "tenant_id", "purpose", "helo_hostname"],
        ),
    ]
    for request, fields in cases:
        assert failure(ippool, "CreateIp", request) == ("INVALID_ARGUMENT", fields), request
    assert failure(ippool, "AllocateVolume", pb.AllocateVolumeRequest(tenant_id="sos-expat", volume=-1)) == (
        "INVALID_ARGUMENT",
        ["volume"],
    )
    # One bad entry rejects the whole batch.
    code, fields = failure(
        ippool,
        "RecordDeliveryStats",
        pb.RecordDeliveryStatsRequest(
            stats=[
                pb.DeliveryStats(address="192.0.2.10", sent=10, delivered=10),
                pb.DeliveryStats(address="192.0.2.10", sent=-1, day="2026-13-01"),
            ]
        ),
    )
    assert (code, fields) == ("INVALID_ARGUMENT", ["stats[1].day", "stats[1].sent"])
    future = pb.DeliveryStats(address="192.0.2.10", sent=5, day="2026-02-01")
    good = pb.DeliveryStats(address="192.0.2.10", sent=5)
    assert failure(ippool, "RecordDeliveryStats", pb.RecordDeliveryStatsRequest(stats=[good, future])) == (
        "INVALID_ARGUMENT",
        ["stats[1].day"],
    )
    missing = pb.DeliveryStats(address="192.0.2.99", sent=5)
    assert failure(ippool, "RecordDeliveryStats", pb.RecordDeliveryStatsRequest(stats=[good, missing]))[0] == (
        "NOT_FOUND"
    )
    # Another tenant's token: a sos-expat IP is not found; a call naming sos-expat is refused.
    ulixai = ippool.token("ulixai")
    unseen = [
        ("GetIp", pb.GetIpRequest(address="192.0.2.10")),
        ("PauseIp", pb.PauseIpRequest(address="192.0.2.10")),
        ("ListIpDecisions", pb.ListIpDecisionsRequest(address="192.0.2.10")),
        ("RecordDeliveryStats", pb.RecordDeliveryStatsRequest(stats=[good])),
        ("RecordListing", pb.RecordListingRequest(address="192.0.2.10", zone="zen.spamhaus.org", listed=True)),
    ]
    for method, request in unseen:
        assert failure(ippool, method, request, ulixai)[0] == "NOT_FOUND", method
    denied = [
        ("CreateIp", pb.CreateIpRequest(address="192.0.2.60", tenant_id="sos-expat")),
        ("AllocateVolume", pb.AllocateVolumeRequest(tenant_id="sos-expat", volume=10)),
        ("UpdateTenant", pb.UpdateTenantRequest(tenant=pb.Tenant(tenant_id="sos-expat", time_zone="Europe/Paris"))),
        (
            "CreateSchedule",
            pb.CreateScheduleRequest(
                tenant_id="sos-expat", schedule=pb.Schedule(schedule_id="s", steps=[pb.WarmupStep(daily_volume=5)])
            ),
        ),
    ]
    for method, request in denied:
        assert failure(ippool, method, request, ulixai)[0] == "PERMISSION_DENIED", method
    viewer = ippool.token("sos-expat", role=Role.VIEWER)
    assert failure(ippool, "PauseIp", pb.PauseIpRequest(address="192.0.2.10"), viewer)[0] == "PERMISSION_DENIED"
    assert ippool.call("GetIp", pb.GetIpRequest(address="192.0.2.10"), viewer).address == "192.0.2.10"
    assert snapshot(ippool) == before
    assert ippool.ip("192.0.2.10").state == pb.IP_STATE_WARMING


def test_tenant_policy_by_field_mask(ippool: IpPoolService) -> None:
    tenant = ippool.call("GetTenant", pb.GetTenantRequest(tenant_id="sos-expat"))
    assert tenant.health.max_bounce_rate_to_advance == pytest.approx(0.02)
    assert tenant.health.standby_cooldown.ToTimedelta() == timedelta(hours=24)
    assert (tenant.provider_shares.gmail, tenant.rotation.enabled, tenant.default_schedule_id) == (
        0.4,
        False,
        "default",
    )

    def update(paths: list[str], **fields: object) -> pb.Tenant:
        return ippool.call(
            "UpdateTenant",
            pb.UpdateTenantRequest(
                tenant=pb.Tenant(tenant_id="sos-expat", **fields), update_mask=field_mask_pb2.FieldMask(paths=paths)
            ),
        )

    changed = update(
        ["health.max_bounce_rate_to_advance", "rotation.enabled", "time_zone"],
        time_zone="Europe/Paris",
        health=pb.HealthGates(max_bounce_rate_to_advance=0.03, min_sample=5),  # min_sample is not in the mask
        rotation=pb.RotationPolicy(enabled=True),
    )
    assert changed.health.max_bounce_rate_to_advance == pytest.approx(0.03)
    assert changed.health.min_sample == 100 and changed.rotation.enabled and changed.time_zone == "Europe/Paris"
    # Without a mask: the fields the request sets. A whole part in the mask: unset fields go back to defaults.
    cooled = ippool.call(
        "UpdateTenant",
        pb.UpdateTenantRequest(
            tenant=pb.Tenant(
                tenant_id="sos-expat", health=pb.HealthGates(standby_cooldown={"seconds": 3600}, min_sample=200)
            )
        ),
    )
    assert cooled.health.standby_cooldown.seconds == 3600 and cooled.health.min_sample == 200
    assert cooled.health.max_bounce_rate_to_advance == pytest.approx(0.03)
    reset = update(["health"], health=pb.HealthGates(min_sample=150))
    assert reset.health.min_sample == 150 and reset.health.max_bounce_rate_to_advance == pytest.approx(0.02)
    assert ippool.call("GetTenant", pb.GetTenantRequest(tenant_id="sos-expat")) == reset

    before = snapshot(ippool)
    assert failure(
        ippool,
        "UpdateTenant",
        pb.UpdateTenantRequest(
            tenant=pb.Tenant(tenant_id="sos-expat"),
            update_mask=field_mask_pb2.FieldMask(paths=["create_time", "bogus"]),
        ),
    ) == ("INVALID_ARGUMENT", ["update_mask"])
    code, fields = failure(
        ippool,
        "UpdateTenant",
        pb.UpdateTenantRequest(
            tenant=pb.Tenant(
                tenant_id="sos-expat",
                time_zone="Mars/Olympus",
                health=pb.HealthGates(max_bounce_rate_to_advance=0.2, min_sample=0),
                provider_shares=pb.ProviderShares(gmail=1.5),
                default_schedule_id="nope",
            )
        ),
    )
    assert code == "INVALID_ARGUMENT"
    assert fields == [
        "tenant.time_zone",
        "tenant.health.max_bounce_rate_to_advance",
        "tenant.health.min_sample",
        "tenant.provider_shares.gmail",
    ]
    assert failure(
        ippool,
        "UpdateTenant",
        pb.UpdateTenantRequest(tenant=pb.Tenant(tenant_id="sos-expat", rotation=pb.RotationPolicy(rest_days=40))),
    ) == ("INVALID_ARGUMENT", ["tenant.rotation.rest_days"])
    assert failure(
        ippool,
        "UpdateTenant",
        pb.UpdateTenantRequest(tenant=pb.Tenant(tenant_id="sos-expat", default_schedule_id="nope")),
    ) == ("INVALID_ARGUMENT", ["tenant.default_schedule_id"])
    assert ippool.call("GetTenant", pb.GetTenantRequest(tenant_id="sos-expat")) == reset
    assert snapshot(ippool) == before


def test_schedules_are_the_tenants_own(ippool: IpPoolService) -> None:
    listed = ippool.call("ListSchedules", pb.ListSchedulesRequest(tenant_id="sos-expat")).schedules
    assert [(s.schedule_id, s.built_in) for s in listed] == [("default", True)]
    assert [s.daily_volume for s in listed[0].steps] == [50, 200, 500, 1500, 5000, 10000]
    assert [s.sending_days for s in listed[0].steps] == [7, 7, 7, 7, 7, 0]
    for schedule_id in ("gentle", "aggressive"):
        ippool.call(
            "CreateSchedule",
            pb.CreateScheduleRequest(
                tenant_id="sos-expat",
                schedule=pb.Schedule(
                    schedule_id=schedule_id,
                    steps=[pb.WarmupStep(daily_volume=100, sending_days=3), pb.WarmupStep(daily_volume=900)],
                ),
            ),
        )
    pages, token = [], ""
    while True:
        page = ippool.call(
            "ListSchedules", pb.ListSchedulesRequest(tenant_id="sos-expat", page_size=1, page_token=token)
        )
        pages += [s.schedule_id for s in page.schedules]
        token = page.next_page_token
        if not token:
            break
    assert pages == ["default", "aggressive", "gentle"]
    assert [
        s.schedule_id for s in ippool.call("ListSchedules", pb.ListSchedulesRequest(tenant_id="ulixai")).schedules
    ] == ["default"]
    assert failure(ippool, "GetSchedule", pb.GetScheduleRequest(tenant_id="ulixai", schedule_id="gentle"))[0] == (
        "NOT_FOUND"
    )
    ip = ippool.register("192.0.2.10", schedule_id="gentle")
    assert (ip.quota.daily, ip.warmup.schedule_id) == (100, "gentle")
    assert failure(
        ippool, "CreateIp", pb.CreateIpRequest(address="198.51.100.1", tenant_id="ulixai", schedule_id="gentle")
    ) == ("INVALID_ARGUMENT", ["schedule_id"])
    # The tenant's default schedule for new IPs.
    ippool.call(
        "UpdateTenant",
        pb.UpdateTenantRequest(tenant=pb.Tenant(tenant_id="sos-expat", default_schedule_id="aggressive")),
    )
    assert ippool.register("192.0.2.11").warmup.schedule_id == "aggressive"

    before = snapshot(ippool)
    code, fields = failure(
        ippool,
        "CreateSchedule",
        pb.CreateScheduleRequest(
            tenant_id="sos-expat",
            schedule=pb.Schedule(
                schedule_id="Bad Id",
                steps=[
                    pb.WarmupStep(daily_volume=500, sending_days=0),
                    pb.WarmupStep(daily_volume=100, sending_days=3),
                    pb.WarmupStep(daily_volume=-1),
                ],
            ),
        ),
    )
    assert code == "INVALID_ARGUMENT"
    assert fields == [
        "schedule.schedule_id",
        "schedule.steps[0].sending_days",
        "schedule.steps[1].daily_volume",
        "schedule.steps[2].daily_volume",
    ]
    reserved = pb.CreateScheduleRequest(
        tenant_id="sos-expat", schedule=pb.Schedule(schedule_id="default", steps=[pb.WarmupStep(daily_volume=5)])
    )
    assert failure(ippool, "CreateSchedule", reserved) == ("INVALID_ARGUMENT", ["schedule.schedule_id"])
    again = pb.CreateScheduleRequest(
        tenant_id="sos-expat", schedule=pb.Schedule(schedule_id="gentle", steps=[pb.WarmupStep(daily_volume=5)])
    )
    assert failure(ippool, "CreateSchedule", again)[0] == "ALREADY_EXISTS"
    assert snapshot(ippool) == before


def test_delivery_stats_are_the_days_totals_and_decisions_page(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.10")
    entry = pb.DeliveryStats(address="192.0.2.10", provider=pb.PROVIDER_GROUP_GMAIL, sent=10, delivered=10)
    for _ in range(3):  # the same totals again: no change
        assert ippool.call("RecordDeliveryStats", pb.RecordDeliveryStatsRequest(stats=[entry])).recorded == 1
    ip = ippool.ip("192.0.2.10")
    assert ip.quota.used_today == 10 and ip.quota.remaining_today == 40
    gmail = next(p for p in ip.quota.by_provider if p.provider == pb.PROVIDER_GROUP_GMAIL)
    assert (gmail.cap, gmail.used_today, gmail.remaining_today) == (20, 10, 10)
    for _ in range(4):
        ippool.next_day()
        jobs.daily_warmup(ippool.app)
    first = ippool.call("ListIpDecisions", pb.ListIpDecisionsRequest(address="192.0.2.10", page_size=2))
    rest = ippool.call(
        "ListIpDecisions",
        pb.ListIpDecisionsRequest(address="192.0.2.10", page_size=10, page_token=first.next_page_token),
    )
    days = [d.day for d in [*first.decisions, *rest.decisions]]
    assert days == ["2026-01-09", "2026-01-08", "2026-01-07", "2026-01-06", "2026-01-05"]
    assert not rest.next_page_token
