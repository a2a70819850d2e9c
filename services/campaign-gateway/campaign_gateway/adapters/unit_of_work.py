"""The campaign-gateway's unit of work over its own database."""

from __future__ import annotations

from sqlalchemy.orm import Session

from campaign_gateway.adapters.repositories import SqlCampaignRepository
from libs.unit_of_work import SqlUnitOfWork


class SqlCampaignUnitOfWork(SqlUnitOfWork):
    campaigns: SqlCampaignRepository

    def _bind(self, session: Session) -> None:
        self.campaigns = SqlCampaignRepository(session)
