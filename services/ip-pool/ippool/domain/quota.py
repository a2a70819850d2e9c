"""An IP's quota today, in its tenant's local day: the daily and hourly quota, what was used, what is left,
overall and per provider group.

Public API:
    ProviderQuotaToday(provider, cap, used_today, remaining_today)
    QuotaToday(day, daily, hourly, used_today, remaining_today, by_provider)
    quota_today(*, ip, policy, schedule, usage, now) -> QuotaToday

A provider's remaining room is its cap less what it used, never more than what the IP has left overall.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ippool.domain.ip import Ip
from ippool.domain.providers import ProviderGroup, provider_cap
from ippool.domain.schedule import WarmupSchedule
from ippool.domain.sending_day import hourly_quota, local_sending_day
from ippool.domain.tenant import TenantPolicy
from ippool.domain.usage import Usage


@dataclass(frozen=True)
class ProviderQuotaToday:
    provider: ProviderGroup
    cap: int
    used_today: int
    remaining_today: int


@dataclass(frozen=True)
class QuotaToday:
    day: date
    """The tenant's local day."""
    daily: int
    hourly: int
    used_today: int
    remaining_today: int
    by_provider: tuple[ProviderQuotaToday, ...]


def quota_today(*, ip: Ip, policy: TenantPolicy, schedule: WarmupSchedule, usage: Usage, now: datetime) -> QuotaToday:
    """Today's quota of `ip` in its tenant's local day, less what `usage` says was used."""
    day = local_sending_day(now, policy.window.time_zone)
    daily = ip.effective_daily_quota(schedule, day)
    used_by_provider = usage.by_provider
    used = sum(used_by_provider.values())
    remaining = max(0, daily - used)
    providers = []
    for group in ProviderGroup:
        cap = provider_cap(daily, policy.provider_shares, group)
        group_used = used_by_provider.get(group, 0)
        providers.append(ProviderQuotaToday(group, cap, group_used, max(0, min(cap - group_used, remaining))))
    return QuotaToday(
        day=day,
        daily=daily,
        hourly=hourly_quota(daily, policy.window, now),
        used_today=used,
        remaining_today=remaining,
        by_provider=tuple(providers),
    )
