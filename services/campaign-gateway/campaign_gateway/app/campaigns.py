"""Use cases on campaigns: accept one for a tenant, read it, list them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from campaign_gateway.adapters.tables import campaign_contacts, campaigns
from campaign_gateway.domain.contacts import Contact, clean_contacts
from libs import audit
from libs.auth import Caller
from libs.db import Database
from libs.errors import InvalidArgument, NotFound, Violations
from libs.pagination import decode_token, encode_token, page_size


@dataclass(frozen=True)
class CampaignRecord:
    campaign_id: str
    tenant: str
    name: str
    template_id: str
    state: str
    state_reason: str
    contact_count: int
    create_time: datetime


class CampaignUseCases:
    def __init__(self, db: Database, now: Callable[[], datetime]):
        self._db = db
        self._now = now

    def create(
        self, caller: Caller, *, tenant: str, template_id: str, name: str, contacts: list[Contact]
    ) -> CampaignRecord:
        v = Violations()
        if not tenant:
            v.add("tenant", "is required")
        if not template_id:
            v.add("template_id", "is required")
        cleaned = clean_contacts(contacts, v)
        v.raise_if_any()
        caller.require_write(tenant)
        record = CampaignRecord(
            campaign_id=str(uuid.uuid4()),
            tenant=tenant,
            name=name or template_id,
            template_id=template_id,
            state="PENDING",
            state_reason="accepted; waiting for its MailWizz binding",
            contact_count=len(cleaned),
            create_time=self._now(),
        )
        audit.note(resource=f"campaigns/{record.campaign_id}")
        with self._db.transaction() as session:
            session.execute(campaigns.insert().values(**record.__dict__))
            session.execute(
                campaign_contacts.insert(),
                [
                    {
                        "campaign_id": record.campaign_id,
                        "email": c.email,
                        "first_name": c.first_name,
                        "last_name": c.last_name,
                        "fields": c.fields,
                    }
                    for c in cleaned
                ],
            )
        return record

    def get(self, caller: Caller, campaign_id: str) -> CampaignRecord:
        try:
            uuid.UUID(campaign_id)
        except ValueError:
            raise InvalidArgument("campaign_id", f"{campaign_id!r} is not a campaign id") from None
        with self._db.transaction() as session:
            row = session.execute(sa.select(campaigns).where(campaigns.c.campaign_id == campaign_id)).first()
        if row is None:
            raise NotFound("campaign", campaign_id)
        caller.require_read(row.tenant)
        return CampaignRecord(**row._mapping)

    def list(self, caller: Caller, *, tenant: str, size: int, token: str) -> tuple[list[CampaignRecord], str]:
        visible = caller.visible_tenant(tenant)
        limit = page_size(size)
        query = sa.select(campaigns).order_by(campaigns.c.create_time.desc(), campaigns.c.campaign_id.desc())
        if visible:
            query = query.where(campaigns.c.tenant == visible)
        position = decode_token(token)
        if position:
            after = datetime.fromisoformat(str(position.get("t")))
            query = query.where(
                sa.or_(
                    campaigns.c.create_time < after,
                    sa.and_(campaigns.c.create_time == after, campaigns.c.campaign_id < str(position.get("i"))),
                )
            )
        with self._db.transaction() as session:
            rows = session.execute(query.limit(limit + 1)).all()
        found = [CampaignRecord(**r._mapping) for r in rows[:limit]]
        next_token = (
            encode_token({"t": found[-1].create_time.isoformat(), "i": found[-1].campaign_id})
            if len(rows) > limit
            else ""
        )
        return found, next_token
