"""Which zones a tenant's IPs and domains are checked against: its own choice, else the installation's defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reputation.domain.zones import Zone, ZoneCatalogue


@dataclass(frozen=True)
class TenantZoneChoice:
    """A tenant's choice as stored: catalogue keys; an empty list means the defaults."""

    tenant_id: str
    ip_zone_keys: tuple[str, ...] = ()
    domain_zone_keys: tuple[str, ...] = ()
    updated_at: datetime | None = None

    @property
    def empty(self) -> bool:
        return not self.ip_zone_keys and not self.domain_zone_keys


@dataclass(frozen=True)
class TenantZones:
    """The zones a tenant's IPs and domains are checked against now."""

    tenant_id: str
    ip_zones: tuple[Zone, ...]
    domain_zones: tuple[Zone, ...]
    default_ip: bool  # the installation's defaults, not a choice of the tenant
    default_domain: bool
    updated_at: datetime | None = None


def zones_for(
    choice: TenantZoneChoice,
    *,
    catalogue: ZoneCatalogue,
    default_ip: tuple[Zone, ...],
    default_domain: tuple[Zone, ...],
) -> TenantZones:
    """The choice applied to the catalogue. A key the catalogue no longer knows (a zone removed since) is ignored
    rather than failing every scan; a kind left with no zone falls back to the defaults."""
    ip = tuple(z for z in (catalogue.get(k) for k in choice.ip_zone_keys) if z is not None)
    domain = tuple(z for z in (catalogue.get(k) for k in choice.domain_zone_keys) if z is not None)
    return TenantZones(
        choice.tenant_id,
        ip or default_ip,
        domain or default_domain,
        default_ip=not ip,
        default_domain=not domain,
        updated_at=choice.updated_at,
    )
