"""Allocation: quotas and caps are never exceeded, only the tenant's sending IPs get volume, the spread is
even, and what cannot go today is planned day by day."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date

import pytest

from ippool.domain.allocation import AllocationResult, IpCapacity, allocate
from ippool.domain.lifecycle import IpState
from ippool.domain.providers import DEFAULT_PROVIDER_SHARES, ProviderGroup, ProviderShares, provider_cap
from ippool.domain.schedule import DEFAULT_SCHEDULE, WarmupPosition, WarmupSchedule, WarmupStep, advance
from libs.errors import InvalidArgument

TODAY = date(2026, 1, 5)
TENANT = "sos-expat"
GROUPS = tuple(ProviderGroup)


def ip(
    address: str,
    step: int = 5,
    day: int = 1,
    *,
    tenant: str = TENANT,
    state: IpState | None = None,
    used: int = 0,
    used_by_provider: Mapping[ProviderGroup, int] | None = None,
    resting: bool = False,
    schedule: WarmupSchedule = DEFAULT_SCHEDULE,
) -> IpCapacity:
    position = WarmupPosition(step_index=step, sending_day_in_step=day)
    if state is None:
        state = IpState.WARM if step == schedule.last_step_index else IpState.WARMING
    return IpCapacity(
        address=address,
        tenant_id=tenant,
        state=state,
        schedule=schedule,
        position=position,
        used_today=used,
        used_by_provider=dict(used_by_provider or {}),
        resting=resting,
    )


def requested_of(volume: int | Mapping[ProviderGroup, int]) -> dict[ProviderGroup, int]:
    if isinstance(volume, int):
        return {ProviderGroup.OTHER: volume} if volume else {}
    return {g: c for g, c in volume.items() if c}


def check_invariants(
    result: AllocationResult,
    ips: list[IpCapacity],
    volume: int | Mapping[ProviderGroup, int],
    shares: ProviderShares = DEFAULT_PROVIDER_SHARES,
) -> None:
    by_address = {capacity.address: capacity for capacity in ips if capacity.tenant_id == TENANT}
    requested = requested_of(volume)
    given = {g: 0 for g in GROUPS}
    for allocation in result.allocations:
        capacity = by_address[allocation.address]  # never a foreign IP
        assert capacity.state in (IpState.WARMING, IpState.WARM) and not capacity.resting
        assert allocation.total == sum(allocation.by_provider.values()) > 0
        assert allocation.total <= capacity.daily_quota - capacity.used_today
        for group, count in allocation.by_provider.items():
            cap = provider_cap(capacity.daily_quota, shares, group)
            assert count <= cap - capacity.used_by_provider.get(group, 0)
            given[group] += count
    assert result.allocated_today == sum(given.values())
    for group in GROUPS:
        planned = sum(day.by_provider.get(group, 0) for day in result.plan)
        assert given[group] + result.remainder_by_provider.get(group, 0) == requested.get(group, 0)
        assert planned + result.unplanned_by_provider.get(group, 0) == result.remainder_by_provider.get(group, 0)
    # Nothing is left over while an IP could still have taken it today.
    allocated = {a.address: a for a in result.allocations}
    for group, left in result.remainder_by_provider.items():
        assert left > 0
        for capacity in by_address.values():
            if capacity.state not in (IpState.WARMING, IpState.WARM) or capacity.resting:
                continue
            mine = allocated.get(capacity.address)
            total = mine.total if mine else 0
            got = mine.by_provider.get(group, 0) if mine else 0
            total_room = capacity.daily_quota - capacity.used_today - total
            group_room = (
                provider_cap(capacity.daily_quota, shares, group) - capacity.used_by_provider.get(group, 0) - got
            )
            assert total_room <= 0 or group_room <= 0
    excluded = {e.address for e in result.excluded}
    for capacity in by_address.values():
        if capacity.state not in (IpState.WARMING, IpState.WARM) or capacity.resting:
            assert capacity.address in excluded
    for plan_day in result.plan:
        assert plan_day.total == sum(plan_day.by_provider.values()) > 0
        assert (plan_day.day - TODAY).days == plan_day.day_offset
    assert [d.day_offset for d in result.plan] == sorted({d.day_offset for d in result.plan})


def test_100k_over_a_mixed_fleet() -> None:
    ips = [
        ip("192.0.2.10", step=5, day=4),
        ip("192.0.2.11", step=4, day=2),
        ip("192.0.2.12", step=1, day=6),
        ip("192.0.2.13", step=5, state=IpState.STANDBY),
        ip("192.0.2.14", step=5, state=IpState.PAUSED),
        ip("192.0.2.15", step=5, state=IpState.RETIRED),
        ip("192.0.2.16", step=5, resting=True),
        ip("198.51.100.1", step=5, tenant="ulixai"),
    ]
    volume = {
        ProviderGroup.GMAIL: 45_000,
        ProviderGroup.MICROSOFT: 20_000,
        ProviderGroup.YAHOO: 5_000,
        ProviderGroup.OTHER: 30_000,
    }
    result = allocate(tenant_id=TENANT, ips=ips, volume=volume, today=TODAY)
    check_invariants(result, ips, volume)
    assert {a.address for a in result.allocations} == {"192.0.2.10", "192.0.2.11", "192.0.2.12"}
    assert result.allocated_today == 10_000 + 5_000 + 200
    assert result.remainder == 100_000 - 15_200
    assert result.plan and result.unplanned == 0
    assert result.ignored_foreign_ips == 1
    assert "198.51.100.1" not in repr(result)
    assert {e.address: e.reason.split(":")[0] for e in result.excluded} == {
        "192.0.2.13": "STANDBY",
        "192.0.2.14": "PAUSED",
        "192.0.2.15": "RETIRED",
        "192.0.2.16": "resting today (rotation policy)",
    }


def test_young_ip_gets_its_full_quota_and_warm_ips_share_the_rest_evenly() -> None:
    ips = [ip("192.0.2.1", step=0), ip("192.0.2.2"), ip("192.0.2.3")]
    result = allocate(tenant_id=TENANT, ips=ips, volume=5_051, today=TODAY)
    totals = {a.address: a.total for a in result.allocations}
    assert totals == {"192.0.2.1": 50, "192.0.2.2": 2501, "192.0.2.3": 2500}
    assert result.remainder == 0 and result.plan == ()


def test_provider_caps_hold_and_overflow_goes_to_the_plan() -> None:
    result = allocate(tenant_id=TENANT, ips=[ip("192.0.2.1")], volume={ProviderGroup.GMAIL: 10_000}, today=TODAY)
    assert result.allocated_today == 4_000
    assert [(d.day_offset, d.total) for d in result.plan] == [(1, 4_000), (2, 2_000)]
    assert result.plan[0].day == date(2026, 1, 6)


def test_already_used_quota_and_provider_volume_count() -> None:
    capacity = ip("192.0.2.1", used=9_000, used_by_provider={ProviderGroup.GMAIL: 3_900})
    result = allocate(
        tenant_id=TENANT, ips=[capacity], volume={ProviderGroup.GMAIL: 500, ProviderGroup.OTHER: 5_000}, today=TODAY
    )
    assert result.allocations[0].by_provider == {ProviderGroup.GMAIL: 100, ProviderGroup.OTHER: 900}


def test_plan_follows_the_projected_warmup() -> None:
    result = allocate(tenant_id=TENANT, ips=[ip("192.0.2.1", step=0, day=6)], volume=1_000, today=TODAY)
    assert result.allocated_today == 50
    assert [d.total for d in result.plan] == [50, 200, 200, 200, 200, 100]


def test_plan_is_capped_and_reports_what_does_not_fit() -> None:
    result = allocate(
        tenant_id=TENANT, ips=[ip("192.0.2.1", step=0)], volume=10_000_000, today=TODAY, plan_horizon_days=60
    )
    assert len(result.plan) == 60
    assert result.unplanned == 10_000_000 - result.allocated_today - sum(d.total for d in result.plan)
    assert result.unplanned > 0


def test_no_sending_ip_means_everything_is_unplanned() -> None:
    ips = [ip("192.0.2.1", state=IpState.STANDBY), ip("192.0.2.2", tenant="ulixai")]
    result = allocate(tenant_id=TENANT, ips=ips, volume=1_000, today=TODAY)
    assert result.allocations == () and result.plan == ()
    assert result.remainder == result.unplanned == 1_000


def test_zero_share_never_receives_that_provider() -> None:
    shares = ProviderShares(yahoo=0.0)
    result = allocate(
        tenant_id=TENANT, ips=[ip("192.0.2.1")], volume={ProviderGroup.YAHOO: 10}, today=TODAY, shares=shares
    )
    assert result.allocated_today == 0 and result.unplanned == 10


@pytest.mark.parametrize(
    ("volume", "field"),
    [
        (-1, "volume"),
        (1.5, "volume"),
        ({ProviderGroup.GMAIL: -3}, "volume_by_provider[GMAIL]"),
        ({"HOTMAIL": 3}, "volume_by_provider[HOTMAIL]"),
    ],
)
def test_bad_volume_is_invalid_argument_naming_the_field(volume: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        allocate(tenant_id=TENANT, ips=[ip("192.0.2.1")], volume=volume, today=TODAY)  # type: ignore[arg-type]
    assert caught.value.violations[0].field == field


def test_duplicate_ip_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        allocate(tenant_id=TENANT, ips=[ip("192.0.2.1"), ip("192.0.2.1")], volume=1, today=TODAY)


def random_fleet(rng: random.Random, size: int) -> list[IpCapacity]:
    schedules = [
        DEFAULT_SCHEDULE,
        WarmupSchedule("steep", (WarmupStep(100, 2), WarmupStep(2_000, 3), WarmupStep(25_000, None))),
    ]
    fleet = []
    for index in range(size):
        schedule = rng.choice(schedules)
        step = rng.randrange(len(schedule.steps))
        days = schedule.steps[step].sending_days or 30
        state = rng.choices(list(IpState), weights=[5, 5, 1, 1, 1])[0]
        if state in (IpState.WARMING, IpState.WARM):
            state = IpState.WARM if step == schedule.last_step_index else IpState.WARMING
        quota = schedule.steps[step].daily_volume
        used = rng.choice([0, 0, rng.randrange(quota + 1)])
        used_by_provider = {
            g: rng.randrange(provider_cap(quota, DEFAULT_PROVIDER_SHARES, g) + 1) for g in GROUPS if rng.random() < 0.3
        }
        fleet.append(
            ip(
                f"10.0.{index // 250}.{index % 250}",
                step=step,
                day=rng.randint(1, days),
                tenant=TENANT if rng.random() < 0.9 else "ulixai",
                state=state,
                used=used,
                used_by_provider=used_by_provider,
                resting=rng.random() < 0.05,
                schedule=schedule,
            )
        )
    return fleet


@pytest.mark.parametrize("seed", range(40))
def test_invariants_hold_on_random_fleets(seed: int) -> None:
    rng = random.Random(seed)
    fleet = random_fleet(rng, rng.randint(0, 60))
    if rng.random() < 0.3:
        volume: int | dict[ProviderGroup, int] = rng.randrange(2_000_000)
    else:
        volume = {g: rng.choice([0, rng.randrange(50_000), rng.randrange(3_000_000)]) for g in GROUPS}
    result = allocate(tenant_id=TENANT, ips=fleet, volume=volume, today=TODAY, plan_horizon_days=rng.choice([0, 7, 60]))
    check_invariants(result, fleet, volume)


@pytest.mark.parametrize("seed", range(20))
def test_single_provider_spread_is_even(seed: int) -> None:
    rng = random.Random(1000 + seed)
    fleet = [ip(f"10.1.0.{i}", step=rng.randrange(6), used=rng.choice([0, rng.randrange(60)])) for i in range(30)]
    room = {c.address: max(0, c.daily_quota - c.used_today) for c in fleet}
    volume = rng.randrange(sum(room.values()) + 1)
    result = allocate(tenant_id=TENANT, ips=fleet, volume=volume, today=TODAY)
    given = {c.address: 0 for c in fleet} | {a.address: a.total for a in result.allocations}
    assert sum(given.values()) == volume
    highest = max(given.values())
    for address, count in given.items():
        assert count == room[address] or count >= highest - 1


def reference_plan(fleet: list[IpCapacity], remainder: dict[ProviderGroup, int], horizon: int) -> list[dict]:
    """Day by day with nothing skipped: the fast plan must match it."""
    days = []
    capacities = [
        c for c in fleet if c.tenant_id == TENANT and c.state in (IpState.WARM, IpState.WARMING) and not c.resting
    ]
    positions = [c.position for c in capacities]
    left = dict(remainder)
    for _ in range(horizon):
        positions = [advance(c.schedule, p) for c, p in zip(capacities, positions, strict=True)]
        tomorrow = [
            IpCapacity(c.address, TENANT, c.state, c.schedule, p) for c, p in zip(capacities, positions, strict=True)
        ]
        day = allocate(
            tenant_id=TENANT,
            ips=tomorrow,
            volume={g: n for g, n in left.items() if n},
            today=TODAY,
            plan_horizon_days=0,
        )
        taken = {g: n for g, n in left.items() if n - day.remainder_by_provider.get(g, 0)}
        days.append({g: n - day.remainder_by_provider.get(g, 0) for g, n in taken.items()})
        left = dict(day.remainder_by_provider)
    return days


@pytest.mark.parametrize("seed", range(15))
def test_fast_plan_matches_a_day_by_day_reference(seed: int) -> None:
    rng = random.Random(2000 + seed)
    fleet = random_fleet(rng, rng.randint(1, 25))
    volume = {g: rng.randrange(400_000) for g in GROUPS}
    horizon = 40
    result = allocate(tenant_id=TENANT, ips=fleet, volume=volume, today=TODAY, plan_horizon_days=horizon)
    expected = reference_plan(fleet, dict(result.remainder_by_provider), horizon)
    got = {d.day_offset: d.by_provider for d in result.plan}
    for offset, by_provider in enumerate(expected, start=1):
        assert got.get(offset, {}) == by_provider
