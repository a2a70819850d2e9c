"""The reputation service's unit of work over its own database, and its once-only claims."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from libs.db import Database
from libs.jobs import claim_once, forget_claims_before
from libs.unit_of_work import SqlUnitOfWork
from reputation.adapters.repositories import (
    SqlDomainChecks,
    SqlIpListings,
    SqlScanHistory,
    SqlTenantDomains,
    SqlTenantScanSettings,
    SqlTenantZones,
    SqlWatchedIps,
    SqlZoneHealth,
)


class SqlReputationUnitOfWork(SqlUnitOfWork):
    ips: SqlWatchedIps
    scans: SqlScanHistory
    listings: SqlIpListings
    zone_health: SqlZoneHealth
    tenant_zones: SqlTenantZones
    tenant_domains: SqlTenantDomains
    domain_checks: SqlDomainChecks
    scan_settings: SqlTenantScanSettings

    def _bind(self, session: Session) -> None:
        self.ips = SqlWatchedIps(session)
        self.scans = SqlScanHistory(session)
        self.listings = SqlIpListings(session)
        self.zone_health = SqlZoneHealth(session)
        self.tenant_zones = SqlTenantZones(session)
        self.tenant_domains = SqlTenantDomains(session)
        self.domain_checks = SqlDomainChecks(session)
        self.scan_settings = SqlTenantScanSettings(session)


class JobRunClaims:
    """Claims in the platform's `job_runs` table of the service's database, each committed at once."""

    def __init__(self, db: Database):
        self._db = db

    def claim(self, key: str, owner: str, now: datetime) -> bool:
        return claim_once(self._db, key, owner, now)

    def forget_before(self, before: datetime) -> None:
        forget_claims_before(self._db, before)
