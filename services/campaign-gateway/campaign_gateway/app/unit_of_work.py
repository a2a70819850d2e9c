"""What the campaign use cases need from storage: a unit of work with the campaign repository.

The SQL implementation is `campaign_gateway.adapters.unit_of_work`; the use-case tests use an in-memory fake.
"""

from __future__ import annotations

from typing import Protocol

from campaign_gateway.domain.campaign import Campaign
from campaign_gateway.domain.contacts import Contact
from libs.pagination import TimePosition
from libs.unit_of_work import UnitOfWork


class CampaignRepository(Protocol):
    def add(self, campaign: Campaign, contacts: list[Contact]) -> None: ...

    def get(self, campaign_id: str) -> Campaign | None: ...

    def list(self, *, tenant: str, limit: int, after: TimePosition | None) -> list[Campaign]:
        """Newest first; every tenant when `tenant` is empty."""
        ...


class CampaignUnitOfWork(UnitOfWork, Protocol):
    campaigns: CampaignRepository
