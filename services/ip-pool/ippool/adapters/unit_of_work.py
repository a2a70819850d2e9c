"""The ip-pool's unit of work over its own database: one repository per aggregate on one session."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ippool.adapters import tables
from ippool.adapters.repositories import (
    SqlAllocationRepository,
    SqlDecisionRepository,
    SqlDeliveryStatsRepository,
    SqlIpFactsReader,
    SqlIpRepository,
    SqlListingRepository,
    SqlScheduleRepository,
    SqlTenantDayRunRepository,
    SqlTenantRepository,
)
from libs.unit_of_work import SqlUnitOfWork


class SqlIpPoolUnitOfWork(SqlUnitOfWork):
    change_counter = tables.changes

    tenants: SqlTenantRepository
    schedules: SqlScheduleRepository
    ips: SqlIpRepository
    decisions: SqlDecisionRepository
    delivery_stats: SqlDeliveryStatsRepository
    listings: SqlListingRepository
    allocations: SqlAllocationRepository
    tenant_days: SqlTenantDayRunRepository
    facts: SqlIpFactsReader

    def _bind(self, session: Session) -> None:
        self.tenants = SqlTenantRepository(session)
        self.schedules = SqlScheduleRepository(session)
        self.ips = SqlIpRepository(session)
        self.decisions = SqlDecisionRepository(session)
        self.delivery_stats = SqlDeliveryStatsRepository(session)
        self.listings = SqlListingRepository(session)
        self.allocations = SqlAllocationRepository(session)
        self.tenant_days = SqlTenantDayRunRepository(session)
        self.facts = SqlIpFactsReader(session)
