"""Use cases on campaigns: accept one for a tenant, read it, list them."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from campaign_gateway.app.unit_of_work import CampaignUnitOfWork
from campaign_gateway.domain.campaign import Campaign, CampaignState
from campaign_gateway.domain.contacts import Contact, clean_contacts
from libs import audit
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import InvalidArgument, NotFound, Violations
from libs.pagination import TimePosition, page_size


class CampaignUseCases:
    def __init__(self, unit_of_work: Callable[[], CampaignUnitOfWork], clock: Clock, *, max_contacts: int):
        self._uow = unit_of_work
        self._clock = clock
        self._max_contacts = max_contacts

    def create(self, caller: Caller, *, tenant: str, template_id: str, name: str, contacts: list[Contact]) -> Campaign:
        problems = Violations()
        if not tenant:
            problems.add("tenant", "is required")
        if not template_id:
            problems.add("template_id", "is required")
        cleaned = clean_contacts(contacts, problems, max_count=self._max_contacts)
        problems.raise_if_any()
        caller.require_write(tenant)
        campaign = Campaign(
            campaign_id=str(uuid.uuid4()),
            tenant=tenant,
            name=name or template_id,
            template_id=template_id,
            state=CampaignState.PENDING,
            state_reason="accepted; waiting for its MailWizz binding",
            contact_count=len(cleaned),
            create_time=self._clock.now(),
        )
        audit.note(resource=f"campaigns/{campaign.campaign_id}")
        with self._uow() as uow:
            uow.campaigns.add(campaign, cleaned)
            uow.commit()
        return campaign

    def get(self, caller: Caller, campaign_id: str) -> Campaign:
        try:
            uuid.UUID(campaign_id)
        except ValueError:
            raise InvalidArgument("campaign_id", f"{campaign_id!r} is not a campaign id") from None
        with self._uow() as uow:
            found = uow.campaigns.get(campaign_id)
        if found is None or not caller.may_read(found.tenant):
            # Another tenant's campaign is answered exactly like a missing one.
            raise NotFound("campaign", campaign_id)
        return found

    def list(self, caller: Caller, *, tenant: str, size: int, token: str) -> tuple[list[Campaign], str]:
        visible = caller.visible_tenant(tenant)
        limit = page_size(size)
        after = TimePosition.decode(token)
        with self._uow() as uow:
            found = uow.campaigns.list(tenant=visible, limit=limit + 1, after=after)
        page = found[:limit]
        next_token = TimePosition(page[-1].create_time, page[-1].campaign_id).encode() if len(found) > limit else ""
        return page, next_token
