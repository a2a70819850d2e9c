"""THE place where a zone's daily query budget is shared out among the tenants' periodic scans.

Public API:
    TenantLoad              -- how many of a tenant's IPs a zone is asked about, and how often the tenant scans them
    ZonePlan                -- per zone: the budget, the queries a day wanted and planned, and per tenant
                               `every` (the zone is asked at every n-th scan of the tenant's IPs)
    queries_per_day(*, ips, interval) -> float
    plan_zone(*, zone_key, daily_budget, loads) -> ZonePlan
    zone_asked(*, address, zone_key, period, every) -> bool

Some lists may be asked only so often for free (Mailspike: 100 000 queries a day; Spamhaus's public mirrors: low
volume, about as much), and they count per querying resolver, so every tenant's IPs share one budget. One
periodic scan of one IP is one query per zone: 100 IPs every 5 minutes is 28 800 queries a day on each zone,
1 000 IPs 288 000.

When the tenants' intervals would ask a zone more than its budget allows, the zone is asked less often -- and only
the zone: the IP keeps its interval on every other list. Who gives way (`plan_zone`): the tenants scanning most
often, never a tenant at an interval the budget affords. The planner finds the shortest common interval F that
fits (`usable` queries a day, summed over the tenants with each tenant at max(its interval, F)) and asks the zone
at every ceil(F / interval)-th scan of the faster tenants' IPs; whole scans keep the plan at or under the budget.
Planned use stays within 90 % of the budget: the rest is left for what the plan does not schedule (on-demand
checks, first scans of new IPs, the zones' health probes -- 2 per zone and scan run, at most 2 880 a day at the
60 s tick -- the TXT lookup of each listing's reason, and retries).

Which scans of an IP ask a throttled zone (`zone_asked`): one in `every`, at an offset of the IP's own, so the
zone's queries are spread over the IPs' scans as evenly as the scans themselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from reputation.domain.scan_schedule import stable_fraction

SECONDS_PER_DAY = 86_400
# Share of a daily budget the plan leaves unscheduled (see the module docstring).
HEADROOM = 0.10


@dataclass(frozen=True)
class TenantLoad:
    """The tenant's IPs a zone is asked about in periodic scans, and the tenant's scan interval."""

    tenant_id: str
    ips: int
    interval: timedelta


def queries_per_day(*, ips: int, interval: timedelta) -> float:
    """One query per IP and scan."""
    return ips * SECONDS_PER_DAY / interval.total_seconds()


@dataclass(frozen=True)
class ZonePlan:
    """How one zone's daily budget is spent by the periodic scans."""

    zone_key: str
    daily_budget: int | None  # None: no budget
    wanted: int  # queries a day every tenant's interval would ask
    planned: int  # queries a day the plan asks (<= the usable budget)
    every: Mapping[str, int] = field(default_factory=dict)  # tenant -> ask at every n-th scan (absent: each)

    def __post_init__(self) -> None:
        object.__setattr__(self, "every", MappingProxyType(dict(self.every)))

    @property
    def limited(self) -> bool:
        """Some tenant's IPs are asked about less often than at each scan."""
        return any(n > 1 for n in self.every.values())

    def every_for(self, tenant_id: str) -> int:
        return self.every.get(tenant_id, 1)

    def interval_for(self, tenant_id: str, interval: timedelta) -> timedelta:
        """How often the zone is asked about each of the tenant's IPs."""
        return interval * self.every_for(tenant_id)


def usable_budget(daily_budget: int) -> int:
    return max(1, math.floor(daily_budget * (1 - HEADROOM)))


def plan_zone(*, zone_key: str, daily_budget: int | None, loads: Sequence[TenantLoad]) -> ZonePlan:
    """The zone's plan: each tenant at its interval when the budget affords it, else the fastest tenants slowed to
    a common interval on this zone (see the module docstring)."""
    loads = [load for load in loads if load.ips > 0]
    wanted = sum(queries_per_day(ips=load.ips, interval=load.interval) for load in loads)
    if daily_budget is None or wanted <= usable_budget(daily_budget):
        return ZonePlan(zone_key, daily_budget, math.ceil(wanted), math.ceil(wanted))
    usable = usable_budget(daily_budget)
    floor = _common_interval(loads, usable)
    every: dict[str, int] = {}
    for load in loads:
        seconds = load.interval.total_seconds()
        # A hair of tolerance, so float rounding never turns an exact multiple into the next one.
        n = max(1, math.ceil(floor / seconds - 1e-9))
        if n > 1:
            every[load.tenant_id] = n
    planned = sum(
        queries_per_day(ips=load.ips, interval=load.interval * every.get(load.tenant_id, 1)) for load in loads
    )
    return ZonePlan(zone_key, daily_budget, math.ceil(wanted), math.floor(planned), every)


def _common_interval(loads: Sequence[TenantLoad], usable: int) -> float:
    """The shortest F (seconds) with sum(ips * day / max(interval, F)) <= usable.

    Going through the tenants from the fastest, the first i for which the fastest i held at F and the others at
    their own interval fit before the (i + 1)-th tenant's interval is where F lies.
    """
    ordered = sorted(loads, key=lambda load: load.interval)
    held_ips = 0
    for i, load in enumerate(ordered):
        held_ips += load.ips
        rest = sum(queries_per_day(ips=other.ips, interval=other.interval) for other in ordered[i + 1 :])
        if usable <= rest:
            continue
        candidate = SECONDS_PER_DAY * held_ips / (usable - rest)
        if i + 1 == len(ordered) or candidate <= ordered[i + 1].interval.total_seconds():
            return max(candidate, load.interval.total_seconds())
    return SECONDS_PER_DAY * held_ips / usable  # not reached: at the last tenant `rest` is 0


def zone_asked(*, address: str, zone_key: str, period: int, every: int) -> bool:
    """Whether the IP's scan of `period` asks the zone (one scan in `every`, at the IP's own offset)."""
    if every <= 1:
        return True
    offset = int(stable_fraction(f"zone:{zone_key}:{address}") * every)
    return (period + offset) % every == 0
