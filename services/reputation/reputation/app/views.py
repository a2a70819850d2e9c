"""What the use cases answer: plain values the servicer maps to its messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reputation.domain.checks import DomainReport, Verdict, worst
from reputation.domain.dnsbl import ZoneHealthRecord
from reputation.domain.query_budget import ZonePlan
from reputation.domain.scan import ScanRecord, ZoneVerdict
from reputation.domain.tenant_domains import CheckState, TenantDomainList
from reputation.domain.zones import Zone


@dataclass(frozen=True)
class IpReputation:
    """One IP: its latest scan, older ones (newest first), and the zones believed to list it now."""

    address: str
    tenant_id: str
    watched: bool
    latest: ScanRecord | None = None
    history: tuple[ScanRecord, ...] = ()
    current_listings: tuple[ZoneVerdict, ...] = ()
    listed: bool = False


@dataclass(frozen=True)
class TenantScan:
    """A scan of every watched IP of a tenant."""

    tenant_id: str
    ips: tuple[IpReputation, ...] = ()
    listed: int = 0
    incomplete: int = 0
    changes: int = 0

    @property
    def scanned(self) -> int:
        return len(self.ips)


@dataclass(frozen=True)
class ZoneStatus:
    """A catalogue zone with its last known health, and whether tenants get it by default."""

    zone: Zone
    health: ZoneHealthRecord
    default: bool
    budget: ZonePlan | None = None  # IP zones: how the periodic scans spend its daily query budget


@dataclass(frozen=True)
class ZoneScanInterval:
    """How often one zone is asked about each IP of a tenant."""

    zone_key: str
    interval: timedelta
    budget_limited: bool


@dataclass(frozen=True)
class TenantScanSettings:
    """A tenant's scan interval (None: the installation's default), the one in force, and each zone's."""

    tenant_id: str
    interval: timedelta | None
    effective: timedelta
    zones: tuple[ZoneScanInterval, ...] = ()
    updated_at: datetime | None = None


@dataclass(frozen=True)
class TenantDomains:
    """A tenant's domains with the believed verdict of each of their checks, in the order they are shown."""

    domains: TenantDomainList
    checks: tuple[CheckState, ...] = ()

    @property
    def verdict(self) -> Verdict | None:
        """The worst believed verdict; None before any check."""
        if not self.checks:
            return None
        return worst([c.verdict for c in self.checks])


@dataclass
class TenantDomainRun:
    """What checking one tenant's domains found and did."""

    tenant_id: str
    sending: list[DomainReport]
    tracking: list[DomainReport]
    changes: list[CheckState] = field(default_factory=list)  # each published as one DomainCheckChanged

    @property
    def unknown(self) -> int:
        return sum(1 for report in self.sending + self.tracking for c in report.checks if c.verdict is Verdict.UNKNOWN)
