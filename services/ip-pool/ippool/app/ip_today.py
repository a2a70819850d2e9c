"""An IP as the API shows it today, loaded for a whole page in a fixed number of queries.

`ips_today` reads, for any number of IPs of any tenants: their tenants, their schedules (none when all are
on the built-in default), and in one query their listings, what they sent and what allocations committed them
to; never one query per IP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from ippool.app.schedules import schedules_of
from ippool.app.unit_of_work import IpFacts, IpPoolUnitOfWork
from ippool.domain.ip import Ip
from ippool.domain.quota import QuotaToday, quota_today
from ippool.domain.schedule import WarmupSchedule, daily_quota
from ippool.domain.tenant import Tenant
from ippool.domain.usage import Usage


@dataclass(frozen=True)
class IpToday:
    """An IP as it stands today: its record, its step's daily volume, today's quota in its tenant's local day,
    and the zones listing it."""

    ip: Ip
    step_daily_volume: int
    quota: QuotaToday
    active_listings: tuple[str, ...]


def usage_on(uow: IpPoolUnitOfWork, days: Mapping[str, date]) -> dict[str, Usage]:
    """What each IP used on its day (address -> tenant-local day), in two queries."""
    sent = uow.delivery_stats.sent(days)
    committed = uow.allocations.committed(days)
    return {a: Usage(sent=sent.get(a, {}), committed=committed.get(a, {})) for a in days}


def ips_today(
    uow: IpPoolUnitOfWork,
    ips: list[Ip],
    now: datetime,
    *,
    tenants: Mapping[str, Tenant] | None = None,
    schedules: Mapping[tuple[str, str], WarmupSchedule] | None = None,
    facts: Mapping[str, IpFacts] | None = None,
) -> list[IpToday]:
    """`tenants`, `schedules` (by tenant and schedule id), `facts` (read for the same day `now`): what the caller
    read already, each one query fewer."""
    if not ips:
        return []
    needed = {ip.tenant_id for ip in ips}
    if tenants is None or not needed <= tenants.keys():
        tenants = uow.tenants.get_many(needed)
    if schedules is None or not {(ip.tenant_id, ip.schedule_id) for ip in ips} <= schedules.keys():
        schedules = schedules_of(uow, ips)
    if facts is None or not {ip.address for ip in ips} <= facts.keys():
        facts = uow.facts.today({ip.address: tenants[ip.tenant_id].local_day(now) for ip in ips})
    found = []
    for ip in ips:
        schedule = schedules[(ip.tenant_id, ip.schedule_id)]
        known = facts[ip.address]
        found.append(
            IpToday(
                ip=ip,
                step_daily_volume=daily_quota(schedule, ip.position),
                quota=quota_today(
                    ip=ip, policy=tenants[ip.tenant_id].policy, schedule=schedule, usage=known.usage, now=now
                ),
                active_listings=tuple(listing.zone for listing in known.listings),
            )
        )
    return found
