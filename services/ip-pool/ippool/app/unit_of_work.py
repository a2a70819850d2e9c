"""What the ip-pool's use cases need from storage: a unit of work with one repository per aggregate.

The SQL implementation is `ippool.adapters.unit_of_work`; the use-case tests use the in-memory fakes of
`tests/unit/ippool/fakes.py`.

Locks: `get(..., lock=True)` holds the row until the unit of work ends, so read-decide-write on one IP (or
one tenant) is never interleaved with another replica's. Inserts of a row that must exist once raise
`libs.errors.Aborted` when a concurrent unit of work wrote it first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from ippool.domain.health import DayCounts
from ippool.domain.history import DecisionKind, IpDecision
from ippool.domain.ip import Ip
from ippool.domain.lifecycle import IpState
from ippool.domain.listings import ActiveListing, ListingAction, ListingSeverity
from ippool.domain.providers import ProviderGroup
from ippool.domain.schedule import TenantSchedule
from ippool.domain.tenant import Tenant
from ippool.domain.usage import Reservation, Usage
from libs.unit_of_work import UnitOfWork

# Per IP and provider group, for the day asked for each IP.
ByProvider = dict[ProviderGroup, int]


class TenantRepository(Protocol):
    def get(self, tenant_id: str, *, lock: bool = False) -> Tenant | None: ...

    def get_many(self, tenant_ids: Iterable[str]) -> dict[str, Tenant]: ...

    def all(self) -> list[Tenant]: ...

    def list(self, *, only: str | None, after: str, limit: int) -> list[Tenant]:
        """By id, after `after`; only that tenant when `only` is set."""
        ...

    def add(self, tenant: Tenant) -> None:
        """Aborted when the tenant exists."""
        ...

    def save(self, tenant: Tenant) -> None: ...

    def lock_for_allocation(self, tenant_id: str) -> bool:
        """Serialises the tenant's reserving allocations until the unit of work ends; False if no such tenant."""
        ...


class ScheduleRepository(Protocol):
    """The tenants' own schedules (the built-in default is not stored)."""

    def get(self, tenant_id: str, schedule_id: str) -> TenantSchedule | None: ...

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], TenantSchedule]:
        """By (tenant_id, schedule_id); the keys that exist."""
        ...

    def list(self, tenant_id: str, *, after: str, limit: int) -> list[TenantSchedule]: ...

    def add(self, schedule: TenantSchedule) -> None:
        """Aborted when the tenant has a schedule of that id."""
        ...


class IpRepository(Protocol):
    def get(self, address: str, *, lock: bool = False) -> Ip | None: ...

    def get_with_tenant(self, address: str, *, lock: bool = False) -> tuple[Ip, Tenant] | None:
        """The IP and its tenant in one read; `lock` locks the IP only, as `get` does."""
        ...

    def add(self, ip: Ip) -> None:
        """Aborted when the address is registered."""
        ...

    def save(self, ip: Ip) -> None:
        """Every field but the address (a released address registered again changes tenant)."""
        ...

    def list(self, *, tenant_id: str, state: IpState | None, after: str, limit: int) -> list[Ip]:
        """By address, after `after`; every tenant's when `tenant_id` is empty."""
        ...

    def of_tenant(self, tenant_id: str, *, include_retired: bool = True, lock: bool = False) -> list[Ip]:
        """The tenant's IPs in address order (the order allocation and rotation see them)."""
        ...

    def any_resting(self, tenant_id: str) -> bool: ...

    def undecided(self, tenant_id: str, day: date) -> list[str]:
        """The tenant's IPs whose warmup day `day` is not decided yet (retired IPs are never decided)."""
        ...

    def standby_delisted(self) -> list[str]:
        """STANDBY IPs whose listings all cleared: candidates for release after the cool-down."""
        ...


class DecisionRepository(Protocol):
    def add(self, decision: IpDecision) -> IpDecision:
        """The entry with its id. Aborted when the IP's warmup day was already decided."""
        ...

    def list(
        self, address: str, *, tenant_id: str, kind: DecisionKind | None, before_id: int | None, limit: int
    ) -> list[IpDecision]:
        """Newest first; only those made while the IP belonged to `tenant_id` unless it is empty."""
        ...

    def counts_since(self, since: datetime) -> list[tuple[str, str, str, str, int]]:
        """How many decisions were recorded from `since` on, per (tenant, kind, action, rule)."""
        ...


class DeliveryStatsRepository(Protocol):
    def record(self, entries: Iterable[tuple[str, str, date, ProviderGroup, DayCounts]], now: datetime) -> None:
        """(address, tenant_id, day, provider, counts): the day's totals so far, replacing any stored before."""
        ...

    def day_counts(self, address: str, day: date) -> dict[ProviderGroup, DayCounts]: ...

    def days_counts(self, address: str, first: date, last: date) -> dict[date, dict[ProviderGroup, DayCounts]]:
        """The IP's totals per day (first..last, both included) and provider group; days without any left out."""
        ...

    def sent(self, days: Mapping[str, date]) -> dict[str, ByProvider]:
        """What each IP sent on its day (address -> tenant-local day)."""
        ...


class ListingRepository(Protocol):
    def zones(self, address: str) -> list[str]:
        """The zones listing the IP now, by name."""
        ...

    def zones_of(self, addresses: Iterable[str]) -> dict[str, list[str]]: ...

    def active(self, address: str) -> list[ActiveListing]:
        """The IP's listings now, by zone, with the action each was given."""
        ...

    def get(self, address: str, zone: str) -> ActiveListing | None: ...

    def add(
        self,
        address: str,
        zone: str,
        *,
        since: datetime,
        reason: str,
        severity: ListingSeverity = ListingSeverity.UNSPECIFIED,
        action: ListingAction = ListingAction.STANDBY,
        policy_field: str = "",
    ) -> bool:
        """False when the zone already lists the IP."""
        ...

    def upgrade(self, address: str, listing: ActiveListing, *, reason: str) -> None:
        """A zone that lists the IP again with a stronger action: its severity, action and reason replaced."""
        ...

    def remove(self, address: str, zone: str) -> ActiveListing | None:
        """The listing removed; None when the zone did not list the IP."""
        ...


class AllocationRepository(Protocol):
    def add(self, reservation: Reservation) -> None: ...

    def committed(self, days: Mapping[str, date]) -> dict[str, ByProvider]:
        """Per IP and provider group, the highest level reserved on its day (address -> tenant-local day)."""
        ...

    def committed_on(self, address: str, first: date, last: date) -> dict[date, ByProvider]:
        """One IP's highest level reserved per day (first..last, both included) and provider group."""
        ...


@dataclass(frozen=True)
class IpFacts:
    """What an IP as shown today needs besides its record, tenant and schedule: the zones listing it now (by
    zone, with the action each was given) and what it used on its tenant-local day."""

    listings: tuple[ActiveListing, ...] = ()
    usage: Usage = field(default_factory=Usage)


class IpFactsReader(Protocol):
    """A read across listings, delivery stats and allocations, so an IP's answer costs one query, not three."""

    def today(self, days: Mapping[str, date]) -> dict[str, IpFacts]:
        """The facts of each IP on its day (address -> tenant-local day); every address asked is answered."""
        ...


class TenantDayRunRepository(Protocol):
    """Once-a-day tenant-wide work (rotation): marked in the same unit of work as the work itself."""

    def done(self, tenant_id: str, day: date, kind: str) -> bool: ...

    def mark(self, tenant_id: str, day: date, kind: str, now: datetime) -> None:
        """Aborted (at once, or when a racing unit of work commits) when already marked."""
        ...


class IpPoolUnitOfWork(UnitOfWork, Protocol):
    tenants: TenantRepository
    schedules: ScheduleRepository
    ips: IpRepository
    decisions: DecisionRepository
    delivery_stats: DeliveryStatsRepository
    listings: ListingRepository
    allocations: AllocationRepository
    tenant_days: TenantDayRunRepository
    facts: IpFactsReader
