"""Rotation: rests are staggered so the tenant's warm capacity never falls under its floor."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, timedelta

import pytest

from ippool.domain.allocation import IpCapacity, allocate
from ippool.domain.health import DayReport
from ippool.domain.lifecycle import IpState, IpStatus
from ippool.domain.rotation import (
    RotationCandidate,
    RotationPolicy,
    decide_rotation,
    is_resting,
    warm_capacity,
)
from ippool.domain.schedule import DEFAULT_SCHEDULE, WarmupPosition, daily_quota
from ippool.domain.warmup import apply_decision, decide_day
from libs.errors import InvalidArgument

START = date(2026, 1, 5)
TENANT = "sos-expat"


@dataclass
class SimulatedIp:
    address: str
    status: IpStatus
    resting_until: date | None = None
    rests: int = 0

    def candidate(self) -> RotationCandidate:
        return RotationCandidate(
            self.address, self.status.state, DEFAULT_SCHEDULE, self.status.position, self.resting_until
        )


def warm_fleet(count: int, warm_days: list[int] | None = None) -> list[SimulatedIp]:
    warm_days = warm_days or [1] * count
    return [
        SimulatedIp(f"192.0.2.{10 + i}", IpStatus(IpState.WARM, WarmupPosition(5, warm_days[i]))) for i in range(count)
    ]


def simulate(fleet: list[SimulatedIp], policy: RotationPolicy, days: int) -> list[int]:
    """Run the daily loop: warmup decisions, then rotation, then a healthy day of sending at full quota."""
    capacities = []
    yesterday_sent: dict[str, int] = {}
    for offset in range(days):
        today = START + timedelta(days=offset)
        for ip in fleet:
            sent = yesterday_sent.get(ip.address, 0)
            report = DayReport(today - timedelta(days=1), sent=sent, delivered=sent)
            decision = decide_day(today=today, schedule=DEFAULT_SCHEDULE, position=ip.status.position, yesterday=report)
            ip.status = apply_decision(ip.status, DEFAULT_SCHEDULE, decision)
        rotation = decide_rotation(today=today, fleet=[ip.candidate() for ip in fleet], policy=policy)
        by_address = {ip.address: ip for ip in fleet}
        for address in rotation.back:
            by_address[address].resting_until = None
        for order in rotation.rest:
            ip = by_address[order.address]
            ip.status = replace(ip.status, position=order.position_after, state=order.state_after)
            ip.resting_until = order.resting_until
            ip.rests += 1
        candidates = [ip.candidate() for ip in fleet]
        capacity = warm_capacity(candidates, today)
        assert capacity == rotation.warm_capacity_after
        capacities.append(capacity)
        # Send each IP's full quota through allocation, so resting IPs really get nothing.
        ips = [
            IpCapacity(
                ip.address,
                TENANT,
                ip.status.state,
                DEFAULT_SCHEDULE,
                ip.status.position,
                resting=is_resting(ip.resting_until, today),
            )
            for ip in fleet
        ]
        result = allocate(tenant_id=TENANT, ips=ips, volume=10**9, today=today, plan_horizon_days=0)
        yesterday_sent = {a.address: a.total for a in result.allocations}
        for ip in fleet:
            if is_resting(ip.resting_until, today):
                assert ip.address not in yesterday_sent
            else:
                assert yesterday_sent[ip.address] == daily_quota(DEFAULT_SCHEDULE, ip.status.position)
    return capacities


def test_six_ips_over_90_days_never_fall_under_the_floor() -> None:
    policy = RotationPolicy(enabled=True, full_use_days=14, rest_days=3, warm_capacity_floor=40_000)
    fleet = warm_fleet(6)
    capacities = simulate(fleet, policy, 90)
    assert min(capacities) >= 40_000
    assert all(ip.rests >= 2 for ip in fleet)  # rotation really happened, for every IP
    assert min(capacities) == 40_000  # and it used the room it had


@pytest.mark.parametrize("seed", range(10))
def test_random_policies_keep_the_floor(seed: int) -> None:
    rng = random.Random(seed)
    floor = rng.choice([0, 10_000, 20_000, 30_000, 45_000, 50_000])
    policy = RotationPolicy(
        enabled=True,
        full_use_days=rng.randint(1, 20),
        rest_days=rng.randint(1, 10),
        warm_capacity_floor=floor,
        rewarm_steps_back=rng.randint(0, 3),
    )
    fleet = warm_fleet(6, [rng.randint(1, 25) for _ in range(6)])
    capacities = simulate(fleet, policy, 90)
    assert min(capacities) >= floor


def test_off_by_default_and_rested_ips_still_come_back() -> None:
    fleet = warm_fleet(6, [100] * 6)
    capacities = simulate(fleet, RotationPolicy(), 30)
    assert capacities == [60_000] * 30
    resting = RotationCandidate("192.0.2.99", IpState.WARMING, DEFAULT_SCHEDULE, WarmupPosition(4), resting_until=START)
    decision = decide_rotation(today=START, fleet=[resting], policy=RotationPolicy())
    assert decision.back == ("192.0.2.99",) and decision.rest == ()


def test_rest_order_explains_itself_and_steps_down() -> None:
    policy = RotationPolicy(enabled=True, full_use_days=10, rest_days=2, warm_capacity_floor=20_000)
    fleet = [c.candidate() for c in warm_fleet(3, [30, 12, 11])]
    decision = decide_rotation(today=START, fleet=fleet, policy=policy)
    assert [o.address for o in decision.rest] == ["192.0.2.10"]
    assert decision.deferred == ("192.0.2.11", "192.0.2.12")
    order = decision.rest[0]
    assert order.resting_until == START + timedelta(days=2)
    assert order.position_after == WarmupPosition(4, 1) and order.state_after is IpState.WARMING
    assert "29 full-use days" in order.reason
    assert (decision.warm_capacity_before, decision.warm_capacity_after) == (30_000, 20_000)


def test_policy_validation() -> None:
    with pytest.raises(InvalidArgument) as caught:
        RotationPolicy(full_use_days=0, warm_capacity_floor=-1)
    assert [v.field for v in caught.value.violations] == ["full_use_days", "warm_capacity_floor"]
