"""What the reputation use cases need from storage: a unit of work with one repository per aggregate, and the
claims that make a periodic run happen once per slot.

The SQL implementations are in `reputation.adapters`; the use-case tests use in-memory fakes
(`tests/unit/reputation/fakes.py`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from libs.unit_of_work import UnitOfWork
from reputation.domain.dnsbl import ZoneHealthRecord
from reputation.domain.scan import IpListings, ScanRecord
from reputation.domain.scan_schedule import ScheduledIp, TenantScanInterval
from reputation.domain.tenant_domains import CheckKey, CheckState, TenantDomainList
from reputation.domain.tenant_zones import TenantZoneChoice
from reputation.domain.watch import WatchedIp


class WatchedIpRepository(Protocol):
    def get(self, address: str) -> WatchedIp | None: ...

    def register(self, ip: WatchedIp, registered_at: datetime) -> None:
        """Adds the IP, or brings it back under watch with its (new) tenant and HELO name."""
        ...

    def retire(self, address: str) -> None:
        """No more periodic scans; the history and the listing state are kept."""
        ...

    def active(self, tenant_id: str = "") -> list[WatchedIp]:
        """The IPs in service, of one tenant or of all, by address."""
        ...

    def never_scanned(self) -> list[WatchedIp]:
        """The IPs in service with no scan recorded yet, by address."""
        ...

    def helo_names(self, tenant_id: str, addresses: Collection[str]) -> dict[str, str]:
        """The HELO name of each of these addresses that the tenant registered."""
        ...

    def lock(self, addresses: Sequence[str]) -> dict[str, str]:
        """Locks the IPs' rows until the unit of work ends: whoever records a scan of an IP takes them first, so
        two recordings of one IP happen one after the other. Returns the tenant of each IP still watched."""
        ...

    def mark_scanned(self, scanned_at: Mapping[str, datetime]) -> None: ...

    def scan_schedule(self) -> list[ScheduledIp]:
        """Every IP in service with its next periodic scan, by address."""
        ...

    def move_scans(self, moves: Mapping[str, tuple[datetime | None, datetime]]) -> set[str]:
        """Compare-and-set of each IP's next periodic scan: {address: (the value read, the new one)}. Moves only the
        IPs still in service whose value is still the one read, and returns them: of two callers moving the same
        IP from the same value, one gets it. The first statement is a write (SQLite: the write lock first)."""
        ...


class ScanHistoryRepository(Protocol):
    def add(self, entries: Sequence[tuple[str, str, ScanRecord]]) -> None:
        """(address, tenant id, scan) for each scan recorded."""
        ...

    def latest(self, address: str, limit: int) -> list[ScanRecord]:
        """The newest `limit` scans of the IP, newest first."""
        ...

    def prune(self, before: datetime) -> int:
        """Deletes the scans older than `before`, always keeping each IP's latest; returns how many."""
        ...


class IpListingRepository(Protocol):
    def get(self, address: str) -> IpListings | None: ...

    def get_many(self, addresses: Collection[str]) -> dict[str, IpListings]: ...

    def of_tenant(self, tenant_id: str) -> list[IpListings]:
        """Every IP of the tenant believed listed somewhere (or scanned once), by address."""
        ...

    def add(self, items: Sequence[IpListings]) -> None: ...

    def update(self, items: Sequence[IpListings]) -> None: ...


class ZoneHealthRepository(Protocol):
    def all(self) -> dict[str, ZoneHealthRecord]: ...

    def lock(self, zone_keys: Sequence[str], now: datetime) -> dict[str, ZoneHealthRecord]:
        """The zones' health, locked until the unit of work ends; a zone never seen is added as unchecked."""
        ...

    def save(self, records: Sequence[ZoneHealthRecord]) -> None: ...


class TenantZoneRepository(Protocol):
    def get(self, tenant_id: str) -> TenantZoneChoice:
        """The tenant's choice (an empty one when it chose nothing)."""
        ...

    def get_many(self, tenant_ids: Collection[str]) -> dict[str, TenantZoneChoice]: ...

    def save(self, choice: TenantZoneChoice, actor: str) -> None:
        """Stores the choice; an empty one goes back to the defaults."""
        ...


class TenantScanSettingsRepository(Protocol):
    def get_many(self, tenant_ids: Collection[str]) -> dict[str, TenantScanInterval]:
        """Each tenant's own interval (None where it has none)."""
        ...

    def save(self, setting: TenantScanInterval, actor: str) -> None:
        """Stores the interval; None goes back to the installation's default."""
        ...


class TenantDomainRepository(Protocol):
    def get(self, tenant_id: str) -> TenantDomainList:
        """The tenant's domains (an empty list when it set none)."""
        ...

    def all(self) -> list[TenantDomainList]:
        """Every tenant's domains, by tenant."""
        ...

    def lock(self, tenant_id: str) -> None:
        """Whoever records a check of the tenant's domains, or changes them, takes this lock first."""
        ...

    def save(self, domains: TenantDomainList, actor: str) -> None:
        """Stores the list; an empty one is removed."""
        ...

    def mark_checked(self, tenant_id: str, checked_at: datetime) -> None: ...


class DomainCheckRepository(Protocol):
    def of_tenant(self, tenant_id: str) -> dict[CheckKey, CheckState]: ...

    def add(self, tenant_id: str, state: CheckState) -> None: ...

    def update(self, tenant_id: str, state: CheckState) -> None: ...

    def forget(self, tenant_id: str, keys: Collection[CheckKey]) -> None: ...


class ReputationUnitOfWork(UnitOfWork, Protocol):
    ips: WatchedIpRepository
    scans: ScanHistoryRepository
    listings: IpListingRepository
    zone_health: ZoneHealthRepository
    tenant_zones: TenantZoneRepository
    tenant_domains: TenantDomainRepository
    domain_checks: DomainCheckRepository
    scan_settings: TenantScanSettingsRepository


class SlotClaims(Protocol):
    """Once-only claims, committed at once: the first caller of a key wins, whatever the number of replicas."""

    def claim(self, key: str, owner: str, now: datetime) -> bool: ...

    def forget_before(self, before: datetime) -> None: ...
