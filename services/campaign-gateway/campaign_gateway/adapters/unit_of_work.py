"""The campaign-gateway's unit of work over its own database."""

from __future__ import annotations

from sqlalchemy.orm import Session

from campaign_gateway.adapters.delivery_repositories import (
    SqlAccountingRepository,
    SqlBounceDeliveryRepository,
    SqlBounceRouteRepository,
    SqlDeploymentRepository,
    SqlLeaseRepository,
    SqlPmtaNodeRepository,
    SqlQueueHoldRepository,
)
from campaign_gateway.adapters.repositories import (
    SqlCampaignRepository,
    SqlMailwizzSyncRepository,
    SqlSuppressionRepository,
)
from libs.unit_of_work import SqlUnitOfWork


class SqlCampaignUnitOfWork(SqlUnitOfWork):
    campaigns: SqlCampaignRepository
    suppressions: SqlSuppressionRepository
    mailwizz_sync: SqlMailwizzSyncRepository
    pmta_nodes: SqlPmtaNodeRepository
    deployments: SqlDeploymentRepository
    leases: SqlLeaseRepository
    queue_holds: SqlQueueHoldRepository
    accounting: SqlAccountingRepository
    bounce_routes: SqlBounceRouteRepository
    bounce_deliveries: SqlBounceDeliveryRepository

    def _bind(self, session: Session) -> None:
        self.campaigns = SqlCampaignRepository(session)
        self.suppressions = SqlSuppressionRepository(session)
        self.mailwizz_sync = SqlMailwizzSyncRepository(session)
        self.pmta_nodes = SqlPmtaNodeRepository(session)
        self.deployments = SqlDeploymentRepository(session)
        self.leases = SqlLeaseRepository(session)
        self.queue_holds = SqlQueueHoldRepository(session)
        self.accounting = SqlAccountingRepository(session)
        self.bounce_routes = SqlBounceRouteRepository(session)
        self.bounce_deliveries = SqlBounceDeliveryRepository(session)
