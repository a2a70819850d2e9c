"""The ip-pool's storage port in memory: `FakeIpPoolUnitOfWork` with one fake repository per aggregate.

Each repository keeps its rows in a dict of the fake database's tables (`tests.fakes.FakeStore`), so nothing
that was not committed is kept; locks are no-ops (one thread); inserting a row that must exist once raises
`Aborted`, as the SQL repositories do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from ippool.app.allocation import AllocationUseCases
from ippool.app.daily import DailyUseCases
from ippool.app.ips import IpUseCases
from ippool.app.schedules import ScheduleUseCases
from ippool.app.signals import SignalUseCases
from ippool.app.tenants import TenantUseCases
from ippool.app.unit_of_work import IpFacts
from ippool.domain.health import DayCounts
from ippool.domain.history import DecisionKind, IpDecision
from ippool.domain.ip import Ip
from ippool.domain.lifecycle import IpState
from ippool.domain.listings import ActiveListing, ListingAction, ListingSeverity
from ippool.domain.providers import ProviderGroup
from ippool.domain.schedule import TenantSchedule
from ippool.domain.tenant import Tenant
from ippool.domain.usage import Reservation, Usage
from libs.clock import Clock
from libs.errors import Aborted
from tests.fakes import FakeStore, FakeUnitOfWork


class FakeTenants:
    def __init__(self, tables: dict[str, Any]):
        self.rows: dict[str, Tenant] = tables.setdefault("tenants", {})

    def get(self, tenant_id: str, *, lock: bool = False) -> Tenant | None:
        return self.rows.get(tenant_id)

    def get_many(self, tenant_ids: Iterable[str]) -> dict[str, Tenant]:
        return {t: self.rows[t] for t in tenant_ids if t in self.rows}

    def all(self) -> list[Tenant]:
        return [self.rows[t] for t in sorted(self.rows)]

    def list(self, *, only: str | None, after: str, limit: int) -> list[Tenant]:
        return [t for t in self.all() if (only is None or t.tenant_id == only) and t.tenant_id > after][:limit]

    def add(self, tenant: Tenant) -> None:
        if tenant.tenant_id in self.rows:
            raise Aborted("exists")
        self.rows[tenant.tenant_id] = tenant

    def save(self, tenant: Tenant) -> None:
        self.rows[tenant.tenant_id] = tenant

    def lock_for_allocation(self, tenant_id: str) -> bool:
        return tenant_id in self.rows


class FakeSchedules:
    def __init__(self, tables: dict[str, Any]):
        self.rows: dict[tuple[str, str], TenantSchedule] = tables.setdefault("schedules", {})

    def get(self, tenant_id: str, schedule_id: str) -> TenantSchedule | None:
        return self.rows.get((tenant_id, schedule_id))

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], TenantSchedule]:
        return {k: self.rows[k] for k in keys if k in self.rows}

    def list(self, tenant_id: str, *, after: str, limit: int) -> list[TenantSchedule]:
        return [self.rows[k] for k in sorted(self.rows) if k[0] == tenant_id and k[1] > after][:limit]

    def add(self, schedule: TenantSchedule) -> None:
        key = (schedule.tenant_id, schedule.schedule.schedule_id)
        if key in self.rows:
            raise Aborted("exists")
        self.rows[key] = schedule


class FakeIps:
    def __init__(self, tables: dict[str, Any]):
        self.rows: dict[str, Ip] = tables.setdefault("ips", {})
        self.tenants: dict[str, Tenant] = tables.setdefault("tenants", {})

    def get(self, address: str, *, lock: bool = False) -> Ip | None:
        return self.rows.get(address)

    def get_with_tenant(self, address: str, *, lock: bool = False) -> tuple[Ip, Tenant] | None:
        ip = self.rows.get(address)
        return None if ip is None else (ip, self.tenants[ip.tenant_id])

    def add(self, ip: Ip) -> None:
        if ip.address in self.rows:
            raise Aborted("exists")
        self.rows[ip.address] = ip

    def save(self, ip: Ip) -> None:
        self.rows[ip.address] = ip

    def _sorted(self) -> list[Ip]:
        return [self.rows[a] for a in sorted(self.rows)]

    def list(self, *, tenant_id: str, state: IpState | None, after: str, limit: int) -> list[Ip]:
        return [
            ip
            for ip in self._sorted()
            if (not tenant_id or ip.tenant_id == tenant_id)
            and (state is None or ip.state is state)
            and ip.address > after
        ][:limit]

    def of_tenant(self, tenant_id: str, *, include_retired: bool = True, lock: bool = False) -> list[Ip]:
        return [
            ip
            for ip in self._sorted()
            if ip.tenant_id == tenant_id and (include_retired or ip.state is not IpState.RETIRED)
        ]

    def any_resting(self, tenant_id: str) -> bool:
        return any(ip.resting_until is not None for ip in self.of_tenant(tenant_id))

    def undecided(self, tenant_id: str, day: date) -> list[str]:
        return [ip.address for ip in self.of_tenant(tenant_id, include_retired=False) if ip.decided_day < day]

    def standby_delisted(self) -> list[str]:
        return [ip.address for ip in self._sorted() if ip.state is IpState.STANDBY and ip.delisted_at is not None]


class FakeDecisions:
    def __init__(self, tables: dict[str, Any]):
        self.rows: list[IpDecision] = tables.setdefault("decisions", [])

    def add(self, decision: IpDecision) -> IpDecision:
        if decision.kind is DecisionKind.WARMUP and any(
            d.kind is DecisionKind.WARMUP and (d.address, d.day) == (decision.address, decision.day) for d in self.rows
        ):
            raise Aborted("decided")
        stored = replace(decision, decision_id=len(self.rows) + 1)
        self.rows.append(stored)
        return stored

    def list(
        self, address: str, *, tenant_id: str, kind: DecisionKind | None, before_id: int | None, limit: int
    ) -> list[IpDecision]:
        found = [
            d
            for d in reversed(self.rows)
            if d.address == address
            and (not tenant_id or d.tenant_id == tenant_id)
            and (kind is None or d.kind is kind)
            and (before_id is None or (d.decision_id or 0) < before_id)
        ]
        return found[:limit]


class FakeDeliveryStats:
    def __init__(self, tables: dict[str, Any]):
        self.rows: dict[tuple[str, date, ProviderGroup], DayCounts] = tables.setdefault("delivery_stats", {})

    def record(self, entries: Iterable[tuple[str, str, date, ProviderGroup, DayCounts]], now: datetime) -> None:
        for address, _tenant, day, provider, counts in entries:
            self.rows[(address, day, provider)] = counts

    def day_counts(self, address: str, day: date) -> dict[ProviderGroup, DayCounts]:
        return {p: c for (a, d, p), c in self.rows.items() if (a, d) == (address, day)}

    def days_counts(self, address: str, first: date, last: date) -> dict[date, dict[ProviderGroup, DayCounts]]:
        found: dict[date, dict[ProviderGroup, DayCounts]] = {}
        for (a, d, p), c in self.rows.items():
            if a == address and first <= d <= last:
                found.setdefault(d, {})[p] = c
        return found

    def sent(self, days: Mapping[str, date]) -> dict[str, dict[ProviderGroup, int]]:
        found: dict[str, dict[ProviderGroup, int]] = {}
        for (address, day, provider), counts in self.rows.items():
            if days.get(address) == day:
                found.setdefault(address, {})[provider] = counts.sent
        return found


class FakeListings:
    def __init__(self, tables: dict[str, Any]):
        self.rows: dict[tuple[str, str], ActiveListing] = tables.setdefault("listings", {})

    def zones(self, address: str) -> list[str]:
        return sorted(zone for a, zone in self.rows if a == address)

    def zones_of(self, addresses: Iterable[str]) -> dict[str, list[str]]:
        return {a: self.zones(a) for a in addresses if self.zones(a)}

    def active(self, address: str) -> list[ActiveListing]:
        return [self.rows[(address, zone)] for zone in self.zones(address)]

    def get(self, address: str, zone: str) -> ActiveListing | None:
        return self.rows.get((address, zone))

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
        if (address, zone) in self.rows:
            return False
        self.rows[(address, zone)] = ActiveListing(zone, severity, action, policy_field)
        return True

    def upgrade(self, address: str, listing: ActiveListing, *, reason: str) -> None:
        self.rows[(address, listing.zone)] = listing

    def remove(self, address: str, zone: str) -> ActiveListing | None:
        return self.rows.pop((address, zone), None)


class FakeAllocations:
    def __init__(self, tables: dict[str, Any]):
        self.rows: list[Reservation] = tables.setdefault("allocations", [])

    def add(self, reservation: Reservation) -> None:
        self.rows.append(reservation)

    def committed(self, days: Mapping[str, date]) -> dict[str, dict[ProviderGroup, int]]:
        found: dict[str, dict[ProviderGroup, int]] = {}
        for reservation in self.rows:
            for line in reservation.lines:
                if days.get(line.address) == reservation.day:
                    by_provider = found.setdefault(line.address, {})
                    by_provider[line.provider] = max(by_provider.get(line.provider, 0), line.level)
        return found

    def committed_on(self, address: str, first: date, last: date) -> dict[date, dict[ProviderGroup, int]]:
        found: dict[date, dict[ProviderGroup, int]] = {}
        for reservation in self.rows:
            if first <= reservation.day <= last:
                for line in reservation.lines:
                    if line.address == address:
                        by_provider = found.setdefault(reservation.day, {})
                        by_provider[line.provider] = max(by_provider.get(line.provider, 0), line.level)
        return found


class FakeTenantDays:
    def __init__(self, tables: dict[str, Any]):
        self.rows: set[tuple[str, date, str]] = tables.setdefault("tenant_days", set())

    def done(self, tenant_id: str, day: date, kind: str) -> bool:
        return (tenant_id, day, kind) in self.rows

    def mark(self, tenant_id: str, day: date, kind: str, now: datetime) -> None:
        if (tenant_id, day, kind) in self.rows:
            raise Aborted("marked")
        self.rows.add((tenant_id, day, kind))


class FakeIpFacts:
    """The facts as the repositories above hold them (the SQL reader reads the same tables in one query)."""

    def __init__(self, tables: dict[str, Any]):
        self.listings = FakeListings(tables)
        self.delivery_stats = FakeDeliveryStats(tables)
        self.allocations = FakeAllocations(tables)

    def today(self, days: Mapping[str, date]) -> dict[str, IpFacts]:
        sent = self.delivery_stats.sent(days)
        committed = self.allocations.committed(days)
        return {
            address: IpFacts(
                listings=tuple(self.listings.active(address)),
                usage=Usage(sent=sent.get(address, {}), committed=committed.get(address, {})),
            )
            for address in days
        }


class FakeIpPoolUnitOfWork(FakeUnitOfWork):
    tenants: FakeTenants
    schedules: FakeSchedules
    ips: FakeIps
    decisions: FakeDecisions
    delivery_stats: FakeDeliveryStats
    listings: FakeListings
    allocations: FakeAllocations
    tenant_days: FakeTenantDays
    facts: FakeIpFacts

    def _bind(self, tables: dict[str, Any]) -> None:
        self.tenants = FakeTenants(tables)
        self.schedules = FakeSchedules(tables)
        self.ips = FakeIps(tables)
        self.decisions = FakeDecisions(tables)
        self.delivery_stats = FakeDeliveryStats(tables)
        self.listings = FakeListings(tables)
        self.allocations = FakeAllocations(tables)
        self.tenant_days = FakeTenantDays(tables)
        self.facts = FakeIpFacts(tables)


class FakeIpPool:
    """The ip-pool's use cases over one in-memory database, as bootstrap.build wires them."""

    def __init__(self, clock: Clock):
        self.store = FakeStore()
        self.clock = clock
        # As in production, GetIp's cache is on: every use-case test also checks it never serves a stale IP.
        self.ips = IpUseCases(self.unit_of_work, clock, changes=lambda: self.store.commits)
        self.tenants = TenantUseCases(self.unit_of_work, clock)
        self.schedules = ScheduleUseCases(self.unit_of_work, clock)
        self.signals = SignalUseCases(self.unit_of_work, clock)
        self.allocations = AllocationUseCases(self.unit_of_work, clock)
        self.daily = DailyUseCases(self.unit_of_work, clock)

    def unit_of_work(self, *, read_only: bool = False) -> FakeIpPoolUnitOfWork:
        return FakeIpPoolUnitOfWork(self.store)

    def events(self, cls: type) -> list[Any]:
        """The events of that type committed so far, in order."""
        return [event for _tenant, event in self.store.published if isinstance(event, cls)]
