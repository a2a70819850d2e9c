"""The campaign repository over the service's own tables."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaign_gateway.adapters.tables import campaign_contacts, campaigns
from campaign_gateway.domain.campaign import Campaign, CampaignState
from campaign_gateway.domain.contacts import Contact
from libs.pagination import TimePosition


class SqlCampaignRepository:
    def __init__(self, session: Session):
        self._session = session

    def add(self, campaign: Campaign, contacts: list[Contact]) -> None:
        self._session.execute(
            campaigns.insert().values(
                campaign_id=campaign.campaign_id,
                tenant=campaign.tenant,
                name=campaign.name,
                template_id=campaign.template_id,
                state=campaign.state.value,
                state_reason=campaign.state_reason,
                contact_count=campaign.contact_count,
                create_time=campaign.create_time,
            )
        )
        if contacts:
            self._session.execute(
                campaign_contacts.insert(),
                [
                    {
                        "campaign_id": campaign.campaign_id,
                        "email": c.email,
                        "first_name": c.first_name,
                        "last_name": c.last_name,
                        "fields": c.fields,
                    }
                    for c in contacts
                ],
            )

    def get(self, campaign_id: str) -> Campaign | None:
        row = self._session.execute(sa.select(campaigns).where(campaigns.c.campaign_id == campaign_id)).first()
        return _campaign(row) if row is not None else None

    def list(self, *, tenant: str, limit: int, after: TimePosition | None) -> list[Campaign]:
        query = sa.select(campaigns).order_by(campaigns.c.create_time.desc(), campaigns.c.campaign_id.desc())
        if tenant:
            query = query.where(campaigns.c.tenant == tenant)
        if after is not None:
            query = query.where(
                sa.or_(
                    campaigns.c.create_time < after.time,
                    sa.and_(campaigns.c.create_time == after.time, campaigns.c.campaign_id < after.id),
                )
            )
        return [_campaign(row) for row in self._session.execute(query.limit(limit)).all()]


def _campaign(row: sa.Row) -> Campaign:
    created: datetime = row.create_time
    return Campaign(
        campaign_id=row.campaign_id,
        tenant=row.tenant,
        name=row.name,
        template_id=row.template_id,
        state=CampaignState(row.state),
        state_reason=row.state_reason,
        contact_count=row.contact_count,
        create_time=created if created.tzinfo else created.replace(tzinfo=UTC),
    )
