"""What an IP sent and was committed to on one day, per provider group.

Public API:
    DayCounts(sent, delivered, bounced, complained, throttled)   -- one day's totals for one provider group
    Usage(sent, committed)    -- `.by_provider` and `.total`: what counts as used today
    ReservedLine(address, provider, volume, level)
    Reservation(allocation_id, tenant_id, day, requested, allocated_today, remainder, lines, time, actor)
    day_report(*, day, counts, blocklisted) -> DayReport   -- the report the warmup decision reads

Used, per provider group, is whichever is more of what was sent (the delivery stats) and the level earlier
allocations committed the IP to (what it had used when they were made plus what they reserved): sends of
allocated messages are not counted twice, and an allocation always lands on top of what had been sent
before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from ippool.domain.health import DayReport
from ippool.domain.providers import ProviderGroup


@dataclass(frozen=True)
class DayCounts:
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    throttled: int = 0


@dataclass(frozen=True)
class Usage:
    """What an IP used on one day, per provider group (see the module's rule)."""

    sent: Mapping[ProviderGroup, int] = field(default_factory=dict)
    committed: Mapping[ProviderGroup, int] = field(default_factory=dict)

    @property
    def by_provider(self) -> dict[ProviderGroup, int]:
        groups = set(self.sent) | set(self.committed)
        return {g: max(self.sent.get(g, 0), self.committed.get(g, 0)) for g in ProviderGroup if g in groups}

    @property
    def total(self) -> int:
        return sum(self.by_provider.values())


@dataclass(frozen=True)
class ReservedLine:
    """What one allocation placed on one IP and provider group today."""

    address: str
    provider: ProviderGroup
    volume: int
    level: int
    """What the IP had used for the provider once this line was reserved (used before + volume)."""


@dataclass(frozen=True)
class Reservation:
    """A reserving allocation: it counts as used for the rest of the tenant's local day."""

    allocation_id: str
    tenant_id: str
    day: date
    requested: int
    allocated_today: int
    remainder: int
    lines: tuple[ReservedLine, ...]
    time: datetime
    actor: str


def day_report(*, day: date, counts: Mapping[ProviderGroup, DayCounts], blocklisted: bool) -> DayReport:
    """One IP's day summed over its provider groups; a provider that throttled at all counts as throttling."""
    return DayReport(
        day=day,
        sent=sum(c.sent for c in counts.values()),
        delivered=sum(c.delivered for c in counts.values()),
        bounced=sum(c.bounced for c in counts.values()),
        complained=sum(c.complained for c in counts.values()),
        blocklisted=blocklisted,
        throttled_providers=frozenset(group for group, c in counts.items() if c.throttled > 0),
    )
