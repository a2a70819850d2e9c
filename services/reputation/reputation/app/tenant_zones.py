"""Which zones each tenant's IPs and domains are checked against (the installation's defaults unless chosen)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from libs.errors import FieldViolation, InvalidArgument
from reputation.adapters.tables import tenant_zones
from reputation.config import ReputationConfig
from reputation.domain.zones import Zone, ZoneKind


@dataclass(frozen=True)
class TenantZoneChoice:
    tenant_id: str
    ip_zones: tuple[Zone, ...]
    domain_zones: tuple[Zone, ...]
    default_ip: bool
    default_domain: bool
    updated_at: datetime | None = None


def choice_for(session: Session, config: ReputationConfig, tenant_id: str) -> TenantZoneChoice:
    row = (
        session.execute(sa.select(tenant_zones).where(tenant_zones.c.tenant_id == tenant_id)).first()
        if tenant_id
        else None
    )
    ip_keys = json.loads(row.ip_zones) if row else []
    domain_keys = json.loads(row.domain_zones) if row else []
    # Keys the catalogue no longer knows (a removed zone) are ignored rather than failing every scan.
    ip = tuple(z for z in (config.catalogue.get(k) for k in ip_keys) if z is not None)
    domain = tuple(z for z in (config.catalogue.get(k) for k in domain_keys) if z is not None)
    return TenantZoneChoice(
        tenant_id,
        ip or config.default_ip_zones,
        domain or config.default_domain_zones,
        default_ip=not ip,
        default_domain=not domain,
        updated_at=row.updated_at if row else None,
    )


def choices_for(session: Session, config: ReputationConfig, tenant_ids: set[str]) -> dict[str, TenantZoneChoice]:
    return {t: choice_for(session, config, t) for t in sorted(tenant_ids)}


def parse_choice(
    config: ReputationConfig, ip_handles: list[str], domain_handles: list[str]
) -> tuple[tuple[Zone, ...], tuple[Zone, ...]]:
    """Both lists validated whole: every unknown zone, or a zone of the wrong kind, named by its field."""
    problems: list[FieldViolation] = []
    chosen: dict[str, tuple[Zone, ...]] = {}
    fields = (("ip_zones", ip_handles, ZoneKind.IP), ("domain_zones", domain_handles, ZoneKind.DOMAIN))
    for field_name, handles, kind in fields:
        try:
            chosen[field_name] = config.catalogue.select(list(handles), field_name, kind)
        except InvalidArgument as exc:
            problems.extend(exc.violations)
    if problems:
        raise InvalidArgument.many(problems)
    return chosen["ip_zones"], chosen["domain_zones"]


def store_choice(
    session: Session, tenant_id: str, ip: tuple[Zone, ...], domain: tuple[Zone, ...], now: datetime, actor: str
) -> None:
    session.execute(sa.delete(tenant_zones).where(tenant_zones.c.tenant_id == tenant_id))
    if not ip and not domain:
        return
    session.execute(
        tenant_zones.insert().values(
            tenant_id=tenant_id,
            ip_zones=json.dumps([z.key for z in ip]),
            domain_zones=json.dumps([z.key for z in domain]),
            updated_at=now,
            updated_by=actor,
        )
    )
