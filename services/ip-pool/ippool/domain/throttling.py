"""THE place where a provider's throttling of an IP is judged, and where that provider's cap on the IP is held,
stepped back or released -- the IP itself goes on.

Public API:
    ThrottleRate(provider, attempts, throttled, rate, counted)
    throttle_rate(*, provider, counts, policy) -> ThrottleRate
    CapChange(provider, before, after, rate, reason)     -- one provider's held cap before/after (None: not held)
    decide_provider_holds(*, schedule, position, position_after, holds, yesterday, shares, policy)
        -> tuple[dict[ProviderGroup, int], tuple[CapChange, ...]]

The rate: reputation-class deferrals (Microsoft `451 4.7.650`, Yahoo `[TSS04]`, Gmail `421-4.7.28`: the provider
slows this IP down for its volume or reputation) over that provider's attempts of the day (sent + deferred). It
counts only from `throttle_min_attempts` attempts: a new IP gets a few of these almost every day, and one deferral
among twenty messages says nothing.

What it does, per provider and day (the decision's day is the day after the figures):
  rate >= throttle_step_back_rate   the provider's cap goes one step down its ladder (below the cap it had)
  rate >= throttle_hold_rate        the provider's cap is held at the cap it had: it stops growing with the IP
  otherwise, with mail sent to it   a held cap climbs one step of its ladder; once it reaches the provider's
                                    share of the IP's quota the hold is gone
  no mail to it                     nothing changes
The ladder of a provider is its share of each step of the IP's schedule (Microsoft at 30 %: 15, 60, 150, 450,
1 500, 3 000 on the default schedule): a held provider climbs back one step per clean day, never in one jump
to the share of a quota that grew while it was held. This is PowerMTA's backoff / KumoMTA's per-provider
suspension brought to the daily quota: the provider that complains slows down, the others do not pay for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ippool.domain.health import DayCounts, DayReport, HealthPolicy
from ippool.domain.providers import ProviderGroup, ProviderShares, provider_cap
from ippool.domain.schedule import WarmupPosition, WarmupSchedule, daily_quota


@dataclass(frozen=True)
class ThrottleRate:
    provider: ProviderGroup
    attempts: int
    throttled: int
    rate: float | None
    """throttled / attempts; None without attempts."""
    counted: bool

    def describe(self) -> str:
        rate = f"{self.rate:.2%}" if self.rate is not None else "n/a"
        return f"{self.provider} throttling rate {rate} ({self.throttled} of {self.attempts} attempts)"


def throttle_rate(*, provider: ProviderGroup, counts: DayCounts, policy: HealthPolicy) -> ThrottleRate:
    """The day's throttling rate of `provider` on the IP, and whether it rests on enough attempts."""
    attempts = counts.attempts
    return ThrottleRate(
        provider=provider,
        attempts=attempts,
        throttled=counts.throttled,
        rate=counts.throttled / attempts if attempts else None,
        counted=attempts >= policy.throttle_min_attempts,
    )


@dataclass(frozen=True)
class CapChange:
    """What the day did to one provider's cap on the IP."""

    provider: ProviderGroup
    before: int | None
    """The held cap before (None: not held)."""
    after: int | None
    rate: ThrottleRate
    reason: str


def _ladder(schedule: WarmupSchedule, shares: ProviderShares, group: ProviderGroup) -> list[int]:
    return sorted({provider_cap(step.daily_volume, shares, group) for step in schedule.steps})


def decide_provider_holds(
    *,
    schedule: WarmupSchedule,
    position: WarmupPosition,
    position_after: WarmupPosition,
    holds: Mapping[ProviderGroup, int],
    yesterday: DayReport,
    shares: ProviderShares,
    policy: HealthPolicy,
) -> tuple[dict[ProviderGroup, int], tuple[CapChange, ...]]:
    """The held caps after the day (`yesterday`'s figures at `position`'s quota; today at `position_after`), and
    each provider's change with its reason. Providers without mail yesterday keep their hold as it is."""
    target = daily_quota(schedule, position)
    today_quota = daily_quota(schedule, position_after)
    after = dict(holds)
    changes: list[CapChange] = []
    for group in ProviderGroup:
        counts = yesterday.by_provider.get(group)
        if counts is None or counts.attempts == 0:
            continue
        rate = throttle_rate(provider=group, counts=counts, policy=policy)
        held = holds.get(group)
        cap = provider_cap(target, shares, group, held)
        ladder = _ladder(schedule, shares, group)
        if rate.counted and rate.rate is not None and rate.rate >= policy.throttle_step_back_rate:
            lower = max((value for value in ladder if value < cap), default=cap)
            after[group] = lower
            reason = (
                f"{rate.describe()} >= step-back rate {policy.throttle_step_back_rate:.0%}: "
                f"{group} cap one step down, {cap} -> {lower}/day"
            )
        elif rate.counted and rate.rate is not None and rate.rate >= policy.throttle_hold_rate:
            after[group] = cap
            reason = f"{rate.describe()} >= hold rate {policy.throttle_hold_rate:.0%}: {group} cap held at {cap}/day"
        elif held is not None:
            higher = min((value for value in ladder if value > held), default=None)
            share_cap = provider_cap(today_quota, shares, group)
            if higher is None or higher >= share_cap:
                del after[group]
                reason = f"{rate.describe()}: no throttling, {group} hold lifted (cap {share_cap}/day)"
            else:
                after[group] = higher
                reason = f"{rate.describe()}: no throttling, {group} held cap climbs one step, {held} -> {higher}/day"
        else:
            continue
        changes.append(CapChange(group, held, after.get(group), rate, reason))
    return after, tuple(changes)
