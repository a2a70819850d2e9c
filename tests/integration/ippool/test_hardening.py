"""What no tenant can do to ip-pool: learn what other tenants own, squat an address for good, or make a call
end in INTERNAL with garbage page tokens or numbers out of range."""

from __future__ import annotations

import base64
import json
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, json_format
from google.rpc import error_details_pb2  # noqa: F401  (the status details' types, to read them)
from grpc_status import rpc_status

from emailengine.ippool.v1 import events_pb2
from emailengine.ippool.v1 import ippool_service_pb2 as pb
from ippool import jobs
from libs.auth import Role
from tests.integration.ippool.conftest import IpPoolService, count
from tests.integration.ippool.test_warmup_job import outbox_events

pytestmark = pytest.mark.integration

INT32_MAX = 2**31 - 1


def refusal(service: IpPoolService, method: str, request: Any, token: str | None = None) -> tuple[str, str, str]:
    """(code, message, details) of a call that must fail, the details as text."""
    with pytest.raises(grpc.RpcError) as caught:
        service.call(method, request, token)
    status = rpc_status.from_call(caught.value)
    details = "" if status is None else json.dumps([json_format.MessageToDict(d) for d in status.details])
    return caught.value.code().name, caught.value.details() or "", details


def same_refusal(
    service: IpPoolService, method: str, token: str, existing: Any, missing: Any, names: tuple[str, str]
) -> tuple[str, str, str]:
    """The refusal of `existing` (another tenant's), checked to be the refusal of `missing` with its name."""
    foreign = refusal(service, method, existing, token)
    absent = refusal(service, method, missing, token)
    assert foreign == tuple(part.replace(names[1], names[0]) for part in absent), method
    return foreign


def token_of(position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


# -- existence oracle ------------------------------------------------------------------------------------


def test_existence_oracle_another_tenants_resources_answer_exactly_like_missing_ones(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.10")
    ippool.call(
        "CreateSchedule",
        pb.CreateScheduleRequest(
            tenant_id="sos-expat", schedule=pb.Schedule(schedule_id="gentle", steps=[pb.WarmupStep(daily_volume=9)])
        ),
    )
    ulixai = ippool.token("ulixai")
    viewer = ippool.token("ulixai", role=Role.VIEWER)
    ip, nothing = "192.0.2.10", "192.0.2.99"
    by_address: list[tuple[str, Any]] = [
        ("GetIp", lambda a: pb.GetIpRequest(address=a)),
        ("ListIpDecisions", lambda a: pb.ListIpDecisionsRequest(address=a)),
        ("PauseIp", lambda a: pb.PauseIpRequest(address=a)),
        ("ResumeIp", lambda a: pb.ResumeIpRequest(address=a)),
        ("RetireIp", lambda a: pb.RetireIpRequest(address=a)),
        ("RecordListing", lambda a: pb.RecordListingRequest(address=a, zone="zen.spamhaus.org", listed=True)),
        ("RecordDeliveryStats", lambda a: pb.RecordDeliveryStatsRequest(stats=[pb.DeliveryStats(address=a, sent=1)])),
    ]
    for method, request in by_address:
        code, message, _ = same_refusal(ippool, method, ulixai, request(ip), request(nothing), (ip, nothing))
        assert (code, message) == ("NOT_FOUND", f"ip '{ip}' not found"), method
    for method, request in by_address[:2]:  # a viewer's reads too
        assert same_refusal(ippool, method, viewer, request(ip), request(nothing), (ip, nothing))[0] == "NOT_FOUND"
    tenant, no_tenant = "sos-expat", "nobody-here"
    assert same_refusal(
        ippool,
        "GetTenant",
        ulixai,
        pb.GetTenantRequest(tenant_id=tenant),
        pb.GetTenantRequest(tenant_id=no_tenant),
        (tenant, no_tenant),
    )[:2] == ("NOT_FOUND", f"tenant '{tenant}' not found")
    for schedule_id in ("gentle", "default", "nope"):
        assert (
            same_refusal(
                ippool,
                "GetSchedule",
                ulixai,
                pb.GetScheduleRequest(tenant_id=tenant, schedule_id=schedule_id),
                pb.GetScheduleRequest(tenant_id=no_tenant, schedule_id=schedule_id),
                (tenant, no_tenant),
            )[0]
            == "NOT_FOUND"
        )
    assert ippool.ip(ip).state == pb.IP_STATE_WARMING  # nothing was changed on the way


def test_existence_oracle_list_and_write_calls_naming_another_tenant_are_refused_whether_it_exists_or_not(
    ippool: IpPoolService,
) -> None:
    ulixai = ippool.token("ulixai")
    naming: list[tuple[str, Any]] = [
        ("ListIps", lambda t: pb.ListIpsRequest(tenant_id=t)),
        ("ListSchedules", lambda t: pb.ListSchedulesRequest(tenant_id=t)),
        ("CreateIp", lambda t: pb.CreateIpRequest(address="192.0.2.60", tenant_id=t)),
        ("AllocateVolume", lambda t: pb.AllocateVolumeRequest(tenant_id=t, volume=10)),
        ("UpdateTenant", lambda t: pb.UpdateTenantRequest(tenant=pb.Tenant(tenant_id=t, time_zone="Europe/Paris"))),
        (
            "CreateSchedule",
            lambda t: pb.CreateScheduleRequest(
                tenant_id=t, schedule=pb.Schedule(schedule_id="s", steps=[pb.WarmupStep(daily_volume=5)])
            ),
        ),
    ]
    for method, request in naming:
        code, _, _ = same_refusal(
            ippool, method, ulixai, request("sos-expat"), request("nobody-here"), ("sos-expat", "nobody-here")
        )
        assert code == "PERMISSION_DENIED", method
    # Listing tenants shows the caller's own only.
    assert [t.tenant_id for t in ippool.call("ListTenants", pb.ListTenantsRequest(), ulixai).tenants] == ["ulixai"]


# -- squatting -------------------------------------------------------------------------------------------


def test_squatting_an_admin_releases_an_address_and_another_tenant_registers_it(ippool: IpPoolService) -> None:
    squatter, needs_it = ippool.token("ulixai"), ippool.token("sos-expat")
    ippool.register("192.0.2.10", tenant="ulixai", token=squatter)
    ippool.stats(pb.DeliveryStats(address="192.0.2.10", sent=20, delivered=20))
    code, _, _ = refusal(ippool, "CreateIp", pb.CreateIpRequest(address="192.0.2.10", tenant_id="sos-expat"), needs_it)
    assert code == "ALREADY_EXISTS"

    released = ippool.call("ReleaseIp", pb.ReleaseIpRequest(address="192.0.2.10", reason="claimed by sos-expat"))
    assert (released.state, released.tenant_id, released.quota.daily) == (pb.IP_STATE_RETIRED, "ulixai", 0)
    assert ippool.call("ReleaseIp", pb.ReleaseIpRequest(address="192.0.2.10")) == released  # again: no change
    # Until someone registers it, the releasing tenant still sees its retired IP and its history.
    assert ippool.call("GetIp", pb.GetIpRequest(address="192.0.2.10"), squatter).state == pb.IP_STATE_RETIRED
    taken = ippool.call("CreateIp", pb.CreateIpRequest(address="192.0.2.10", tenant_id="sos-expat"), needs_it)
    assert (taken.state, taken.tenant_id, taken.quota.daily, taken.warmup.step_index) == (
        pb.IP_STATE_WARMING,
        "sos-expat",
        50,
        0,
    )
    assert refusal(ippool, "GetIp", pb.GetIpRequest(address="192.0.2.10"), squatter)[0] == "NOT_FOUND"
    # The new owner's history starts at its registration; an admin sees the whole of it, with who did what.
    own = ippool.call("ListIpDecisions", pb.ListIpDecisionsRequest(address="192.0.2.10"), needs_it).decisions
    assert [(d.action, d.tenant_id) for d in own] == [("REGISTER", "sos-expat")]
    every = ippool.decisions("192.0.2.10")
    assert [(d.action, d.tenant_id, d.actor) for d in every] == [
        ("REGISTER", "sos-expat", "operator-sos-expat"),
        ("RELEASE_ADDRESS", "ulixai", "admin-all"),
        ("REGISTER", "ulixai", "operator-ulixai"),
    ]
    assert "claimed by sos-expat" in every[1].reason
    retired = [(e.tenant_id, e.state) for e in outbox_events(ippool, events_pb2.IpStateChanged)]
    assert retired == [("ulixai", pb.IP_STATE_RETIRED)]
    assert [e.tenant_id for e in outbox_events(ippool, events_pb2.IpRegistered)] == ["ulixai", "sos-expat"]
    # Its warmup is decided for the new owner alone.
    ippool.next_day()
    assert jobs.daily_warmup(ippool.app).decided == 1


def test_squatting_an_admin_transfers_an_address_to_the_tenant_that_needs_it(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.10", tenant="ulixai")
    ippool.call("PauseIp", pb.PauseIpRequest(address="192.0.2.10"))
    moved = ippool.call(
        "TransferIp", pb.TransferIpRequest(address="192.0.2.10", tenant_id="sos-expat", reason="ticket 42")
    )
    assert (moved.tenant_id, moved.state, moved.quota.daily, moved.warmup.schedule_id) == (
        "sos-expat",
        pb.IP_STATE_WARMING,
        50,
        "default",
    )
    again = ippool.call("TransferIp", pb.TransferIpRequest(address="192.0.2.10", tenant_id="sos-expat"))
    assert again == moved  # already there: nothing changes
    assert ippool.call("GetIp", pb.GetIpRequest(address="192.0.2.10"), ippool.token("sos-expat")) == moved
    assert refusal(ippool, "GetIp", pb.GetIpRequest(address="192.0.2.10"), ippool.token("ulixai"))[0] == "NOT_FOUND"
    history = ippool.decisions("192.0.2.10")
    assert [(d.action, d.tenant_id) for d in history[:2]] == [("REGISTER", "sos-expat"), ("TRANSFER", "ulixai")]
    assert all(d.actor == "admin-all" for d in history[:2]) and "ticket 42" in history[1].reason
    changes = [(e.tenant_id, e.previous_state, e.state) for e in outbox_events(ippool, events_pb2.IpStateChanged)]
    assert changes[-1] == ("ulixai", pb.IP_STATE_PAUSED, pb.IP_STATE_RETIRED)
    assert [e.tenant_id for e in outbox_events(ippool, events_pb2.IpRegistered)] == ["ulixai", "sos-expat"]
    # A listed address moves in standby; an unknown receiving tenant is named.
    ippool.call("RecordListing", pb.RecordListingRequest(address="192.0.2.10", zone="zen.spamhaus.org", listed=True))
    back = ippool.call("TransferIp", pb.TransferIpRequest(address="192.0.2.10", tenant_id="ulixai"))
    assert (back.tenant_id, back.state, list(back.active_listings)) == (
        "ulixai",
        pb.IP_STATE_STANDBY,
        ["zen.spamhaus.org"],
    )
    code, _, details = refusal(
        ippool, "TransferIp", pb.TransferIpRequest(address="192.0.2.10", tenant_id="nobody-here")
    )
    assert code == "INVALID_ARGUMENT" and "tenant_id" in details


def test_squatting_release_and_transfer_are_for_admins_only(ippool: IpPoolService) -> None:
    ippool.register("192.0.2.10")
    own = ippool.token("sos-expat")
    before = ippool.decisions("192.0.2.10")
    assert refusal(ippool, "ReleaseIp", pb.ReleaseIpRequest(address="192.0.2.10"), own)[0] == "PERMISSION_DENIED"
    transfer = pb.TransferIpRequest(address="192.0.2.10", tenant_id="ulixai")
    assert refusal(ippool, "TransferIp", transfer, own)[0] == "PERMISSION_DENIED"
    assert refusal(ippool, "TransferIp", transfer, ippool.token("ulixai"))[0] == "PERMISSION_DENIED"
    assert ippool.decisions("192.0.2.10") == before


# -- numbers and page tokens -----------------------------------------------------------------------------


def test_allocate_volume_0_with_provider_volumes_of_2_31_minus_1_is_invalid_and_writes_nothing(
    ippool: IpPoolService,
) -> None:
    ippool.register("192.0.2.10")
    huge = [pb.ProviderVolume(provider=p, volume=INT32_MAX) for p in (pb.PROVIDER_GROUP_GMAIL, pb.PROVIDER_GROUP_YAHOO)]
    for validate_only in (False, True):
        request = pb.AllocateVolumeRequest(
            tenant_id="sos-expat", volume=0, volume_by_provider=huge, validate_only=validate_only
        )
        code, _, details = refusal(ippool, "AllocateVolume", request)
        assert code == "INVALID_ARGUMENT" and "volume_by_provider" in details
    assert count(ippool, "allocations") == count(ippool, "allocation_lines") == 0
    # One provider at the largest volume the contract carries is a correct answer.
    single = pb.AllocateVolumeRequest(tenant_id="sos-expat", volume_by_provider=huge[:1], plan_horizon_days=0)
    answer = ippool.call("AllocateVolume", single)
    assert (answer.requested, answer.allocated_today, answer.unplanned) == (INT32_MAX, 20, INT32_MAX - 20)


GARBAGE_TOKENS = [
    "garbage",
    "!!!",
    "x" * 5000,
    token_of([]),
    token_of("after"),
    token_of({"after": 12}),
    token_of({"after": {"nested": [1, 2]}}),
    token_of({"after": "\u0000"}),
    token_of({"after": "a" * 10_000}),
    token_of({"before": "x"}),
    token_of({"before": True}),
    token_of({"before": -1}),
    token_of({"before": 10**30}),
    token_of({"before": 1.5}),
]


def answers(service: IpPoolService, method: str, request: Any) -> str:
    try:
        service.call(method, request)
    except grpc.RpcError as error:
        return error.code().name
    return "OK"


def never_internal(service: IpPoolService) -> None:
    service.register("192.0.2.10")
    outcomes: dict[str, set[str]] = {}

    def check(label: str, method: str, request: Any) -> None:
        outcome = answers(service, method, request)
        outcomes.setdefault(label, set()).add(outcome)
        assert outcome not in ("INTERNAL", "UNKNOWN"), (label, request)

    for token in GARBAGE_TOKENS:
        check("ListIps token", "ListIps", pb.ListIpsRequest(page_token=token))
        check("ListTenants token", "ListTenants", pb.ListTenantsRequest(page_token=token))
        check("ListSchedules token", "ListSchedules", pb.ListSchedulesRequest(tenant_id="sos-expat", page_token=token))
        check(
            "ListIpDecisions token",
            "ListIpDecisions",
            pb.ListIpDecisionsRequest(address="192.0.2.10", page_token=token),
        )
    for size in (-1, -(2**31), INT32_MAX):
        check("page sizes", "ListIps", pb.ListIpsRequest(page_size=size))
        check("page sizes", "ListTenants", pb.ListTenantsRequest(page_size=size))
        check("page sizes", "ListSchedules", pb.ListSchedulesRequest(tenant_id="sos-expat", page_size=size))
        check("page sizes", "ListIpDecisions", pb.ListIpDecisionsRequest(address="192.0.2.10", page_size=size))
    check("enums", "ListIps", pb.ListIpsRequest(state=99))
    check("enums", "ListIpDecisions", pb.ListIpDecisionsRequest(address="192.0.2.10", kind=-5))
    for value in (-1, -(2**31), INT32_MAX):
        stats = pb.DeliveryStats(address="192.0.2.10", sent=value, delivered=value, throttled=value, provider=value)
        check("stats", "RecordDeliveryStats", pb.RecordDeliveryStatsRequest(stats=[stats]))
        check("allocation", "AllocateVolume", pb.AllocateVolumeRequest(tenant_id="sos-expat", volume=value))
        check(
            "allocation",
            "AllocateVolume",
            pb.AllocateVolumeRequest(
                tenant_id="sos-expat",
                volume=value,
                plan_horizon_days=value,
                volume_by_provider=[pb.ProviderVolume(provider=value, volume=value)],
            ),
        )
        step = pb.WarmupStep(daily_volume=value, sending_days=value)
        check(
            "schedule",
            "CreateSchedule",
            pb.CreateScheduleRequest(
                tenant_id="sos-expat", schedule=pb.Schedule(schedule_id=f"s{value & 0xFFFF}", steps=[step])
            ),
        )
        policy = pb.Tenant(
            tenant_id="sos-expat",
            sending_window_start_hour=value,
            sending_window_end_hour=value,
            health=pb.HealthGates(
                min_sample=value,
                idle_rewarm_days=value,
                max_bounce_rate_to_advance=float(value),
                standby_cooldown=duration_pb2.Duration(seconds=value),
            ),
            rotation=pb.RotationPolicy(
                full_use_days=value, rest_days=value, warm_capacity_floor=value, rewarm_steps_back=value
            ),
            provider_shares=pb.ProviderShares(gmail=float(value)),
        )
        check("tenant", "UpdateTenant", pb.UpdateTenantRequest(tenant=policy))
        check(
            "tenant",
            "CreateTenant",
            pb.CreateTenantRequest(tenant=pb.Tenant(tenant_id=f"t-{value & 0xFFFF}x", health=policy.health)),
        )
    for days in (10**6, 10**9):  # durations a timedelta cannot hold, or that overflow a date when added
        for seconds in (days * 86_400, -days * 86_400, 315_576_000_000, 2**62):
            cooldown = pb.HealthGates(standby_cooldown=duration_pb2.Duration(seconds=seconds))
            check(
                "durations",
                "UpdateTenant",
                pb.UpdateTenantRequest(tenant=pb.Tenant(tenant_id="sos-expat", health=cooldown)),
            )
    for nanos in (-1, 10**9, -(10**9)):
        cooldown = pb.HealthGates(standby_cooldown=duration_pb2.Duration(seconds=1, nanos=nanos))
        check(
            "durations",
            "UpdateTenant",
            pb.UpdateTenantRequest(tenant=pb.Tenant(tenant_id="sos-expat", health=cooldown)),
        )
    mask = field_mask_pb2.FieldMask(paths=["rotation.rest_days", "health.idle_rewarm_days"])
    longest = pb.Tenant(
        tenant_id="sos-expat",
        health=pb.HealthGates(idle_rewarm_days=INT32_MAX),
        rotation=pb.RotationPolicy(rest_days=INT32_MAX - 1),
    )
    check("tenant", "UpdateTenant", pb.UpdateTenantRequest(tenant=longest, update_mask=mask))
    for day in ("0001-01-01", "9999-12-31", "2026-02-30", "20260105", "2026-01-05T00:00:00"):
        stats = pb.DeliveryStats(address="192.0.2.10", sent=1, day=day)
        check("days", "RecordDeliveryStats", pb.RecordDeliveryStatsRequest(stats=[stats]))
    for text in ("", "x" * 10_000, "ü" * 300, "192.0.2.10/24", "::ffff:300.1.1.1", "0x7f000001", " 192.0.2.10 "):
        check("text", "GetIp", pb.GetIpRequest(address=text))
        check("text", "CreateIp", pb.CreateIpRequest(address=text, tenant_id=text, pool=text, helo_hostname=text))
        check("text", "PauseIp", pb.PauseIpRequest(address="192.0.2.10", reason=text * 10))
        check("text", "ResumeIp", pb.ResumeIpRequest(address=text, reason=text))
        check("text", "RecordListing", pb.RecordListingRequest(address="192.0.2.10", zone=text, reason=text))
        check("text", "GetTenant", pb.GetTenantRequest(tenant_id=text))
        check("text", "GetSchedule", pb.GetScheduleRequest(tenant_id="sos-expat", schedule_id=text))
        check("text", "ReleaseIp", pb.ReleaseIpRequest(address=text, reason=text))
        check("text", "TransferIp", pb.TransferIpRequest(address="192.0.2.10", tenant_id=text, reason=text))
        check(
            "text", "UpdateTenant", pb.UpdateTenantRequest(tenant=pb.Tenant(tenant_id="sos-expat", display_name=text))
        )
    # Whatever was accepted above, the periodic jobs still run.
    service.call(
        "UpdateTenant",
        pb.UpdateTenantRequest(tenant=pb.Tenant(tenant_id="sos-expat", rotation=pb.RotationPolicy(enabled=True))),
    )
    for _ in range(3):
        service.next_day()
        jobs.daily_warmup(service.app)
        jobs.standby_release(service.app)
    assert "INVALID_ARGUMENT" in outcomes["ListIps token"] and "INVALID_ARGUMENT" in outcomes["durations"]


def test_garbage_page_tokens_and_out_of_range_numbers_never_answer_internal_on_sqlite(ippool: IpPoolService) -> None:
    never_internal(ippool)


def test_garbage_page_tokens_and_out_of_range_numbers_never_answer_internal_on_postgresql(
    ippool_pg: IpPoolService,
) -> None:
    never_internal(ippool_pg)
