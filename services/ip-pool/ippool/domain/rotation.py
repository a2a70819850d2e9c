"""Rotation: rest warm IPs now and then, never letting the tenant's warm capacity fall under its floor.

Public API:
    RotationPolicy(enabled=False, full_use_days=28, rest_days=2, warm_capacity_floor=0, rewarm_steps_back=1)
    RotationCandidate(address, state, schedule, position, resting_until=None)
    RestOrder(address, resting_until, position_after, state_after, reason)
    RotationDecision(day, rest, back, still_resting, deferred, warm_capacity_before, warm_capacity_after, floor)
    is_resting(resting_until, today) -> bool
    warm_capacity(fleet, today) -> int
    decide_rotation(*, today, fleet, policy) -> RotationDecision

Definitions:
- Full use: a healthy sending day on the schedule's last step, i.e. a day the warmup decision counted there
  (which requires delivering >= 90 % of the quota). An IP's full-use streak is the count of such days
  since it last reached WARM: `sending_day_in_step - 1` on the last step.
- Warm capacity: the sum of today's daily quotas of the tenant's WARM IPs that are not resting.
- Resting: an IP with `resting_until` after today; it gets no volume (allocation's `resting` flag) and its
  first day back is `resting_until`.

Each day, after the warmup decisions: IPs whose rest is over come back; then the due IPs (WARM, not resting,
streak >= `full_use_days`), longest streak first, start resting one by one as long as the warm capacity that
remains stays >= `warm_capacity_floor`. The others are `deferred` and asked again tomorrow -- that is what
staggers the rests. A rested IP goes down `rewarm_steps_back` steps at once (so it is WARMING while it rests)
and re-warms from there when it is back; it counts as warm capacity again only once it is WARM.
The policy is off by default; turned off, rested IPs still come back on their day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from ippool.domain.lifecycle import IpState, sending_state
from ippool.domain.schedule import MAX_STEPS, WarmupPosition, WarmupSchedule, daily_quota, is_warm, step_back
from libs.errors import Violations

MAX_FULL_USE_DAYS = 3650
MAX_REST_DAYS = 365  # a rest ends on a real date


@dataclass(frozen=True)
class RotationPolicy:
    """Per-tenant rotation settings; off by default."""

    enabled: bool = False
    full_use_days: int = 28
    """Rest an IP after this many full-use days at WARM (M)."""
    rest_days: int = 2
    """Calendar days of rest (N); kept below the idle re-warm threshold by `TenantPolicy`."""
    warm_capacity_floor: int = 0
    """Messages per day the tenant's WARM, non-resting IPs must always offer together."""
    rewarm_steps_back: int = 1
    """How many steps a rested IP goes down before it re-warms."""

    def __post_init__(self) -> None:
        problems = Violations()
        for name, lowest, highest in (
            ("full_use_days", 1, MAX_FULL_USE_DAYS),
            ("rest_days", 1, MAX_REST_DAYS),
            ("warm_capacity_floor", 0, None),
            ("rewarm_steps_back", 0, MAX_STEPS),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
                problems.add(name, f"must be a whole number >= {lowest}")
            elif highest is not None and value > highest:
                problems.add(name, f"must be at most {highest}")
        problems.raise_if_any()


DEFAULT_ROTATION_POLICY = RotationPolicy()


@dataclass(frozen=True)
class RotationCandidate:
    """One of the tenant's IPs as rotation sees it."""

    address: str
    state: IpState
    schedule: WarmupSchedule
    position: WarmupPosition
    resting_until: date | None = None


@dataclass(frozen=True)
class RestOrder:
    """Start resting today: persist `resting_until`, `position_after` and `state_after` on the IP."""

    address: str
    resting_until: date
    position_after: WarmupPosition
    state_after: IpState
    reason: str


@dataclass(frozen=True)
class RotationDecision:
    day: date
    rest: tuple[RestOrder, ...]
    back: tuple[str, ...]
    """Rest over: clear `resting_until`."""
    still_resting: tuple[str, ...]
    deferred: tuple[str, ...]
    """Due for a rest, kept sending today to hold the floor."""
    warm_capacity_before: int
    warm_capacity_after: int
    floor: int


def is_resting(resting_until: date | None, today: date) -> bool:
    return resting_until is not None and today < resting_until


def full_use_streak(candidate: RotationCandidate) -> int:
    """Full-use days since the IP last reached WARM (0 when not warm)."""
    if candidate.state is not IpState.WARM or not is_warm(candidate.schedule, candidate.position):
        return 0
    return candidate.position.sending_day_in_step - 1


def warm_capacity(fleet: Sequence[RotationCandidate], today: date) -> int:
    """Daily messages the tenant's WARM, non-resting IPs offer today."""
    return sum(
        daily_quota(ip.schedule, ip.position)
        for ip in fleet
        if ip.state is IpState.WARM and not is_resting(ip.resting_until, today)
    )


def decide_rotation(*, today: date, fleet: Sequence[RotationCandidate], policy: RotationPolicy) -> RotationDecision:
    """Which IPs start resting today, which come back, and which must wait (module docstring)."""
    back = tuple(ip.address for ip in fleet if ip.resting_until is not None and not is_resting(ip.resting_until, today))
    still_resting = tuple(ip.address for ip in fleet if is_resting(ip.resting_until, today))
    capacity_before = warm_capacity(fleet, today)
    capacity = capacity_before
    rest: list[RestOrder] = []
    deferred: list[str] = []
    if policy.enabled:
        due = [
            ip
            for ip in fleet
            if not is_resting(ip.resting_until, today) and full_use_streak(ip) >= policy.full_use_days
        ]
        due.sort(key=lambda ip: (-full_use_streak(ip), ip.address))
        for ip in due:
            quota = daily_quota(ip.schedule, ip.position)
            if capacity - quota < policy.warm_capacity_floor:
                deferred.append(ip.address)
                continue
            capacity -= quota
            lower = step_back(ip.schedule, ip.position, policy.rewarm_steps_back)
            until = today + timedelta(days=policy.rest_days)
            rest.append(
                RestOrder(
                    address=ip.address,
                    resting_until=until,
                    position_after=lower,
                    state_after=sending_state(ip.schedule, lower),
                    reason=(
                        f"rotation: {full_use_streak(ip)} full-use days >= {policy.full_use_days}; rests until "
                        f"{until}, then re-warms at {daily_quota(ip.schedule, lower)}/day; warm capacity "
                        f"{capacity} >= floor {policy.warm_capacity_floor}"
                    ),
                )
            )
    return RotationDecision(
        day=today,
        rest=tuple(rest),
        back=back,
        still_resting=still_resting,
        deferred=tuple(deferred),
        warm_capacity_before=capacity_before,
        warm_capacity_after=capacity,
        floor=policy.warm_capacity_floor,
    )
