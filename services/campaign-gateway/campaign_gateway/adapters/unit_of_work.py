"""The campaign-gateway's unit of work over its own database."""

from __future__ import annotations

from sqlalchemy.orm import Session

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

    def _bind(self, session: Session) -> None:
        self.campaigns = SqlCampaignRepository(session)
        self.suppressions = SqlSuppressionRepository(session)
        self.mailwizz_sync = SqlMailwizzSyncRepository(session)
