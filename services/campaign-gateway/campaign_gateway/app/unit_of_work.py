"""What the campaign use cases need from storage: a unit of work with the campaign repository.

The SQL implementation is `campaign_gateway.adapters.unit_of_work`; the use-case tests use an in-memory fake.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from campaign_gateway.domain.campaign import Campaign, CampaignState, CampaignStep
from campaign_gateway.domain.contacts import Contact, ContactProblem, Suppression
from libs.pagination import TimePosition
from libs.unit_of_work import UnitOfWork


class CampaignRepository(Protocol):
    def add(self, campaign: Campaign, contacts: list[Contact], positions: Sequence[int] = ()) -> None:
        """A new campaign and the contacts it sends to (`positions`: where each was in the request)."""
        ...

    def get(self, campaign_id: str) -> Campaign | None: ...

    def list(
        self, *, tenant: str, limit: int, after: TimePosition | None, state: CampaignState | None = None
    ) -> list[Campaign]:
        """Newest first; every tenant when `tenant` is empty."""
        ...

    def by_request(self, tenant: str, request_id: str) -> Campaign | None: ...

    def save(self, campaign: Campaign) -> None:
        """Writes the campaign's changing fields (state, stage, plan, MailWizz ids, counts)."""
        ...

    def contacts(self, campaign_id: str) -> list[tuple[int, Contact]]:
        """(position in the request, contact), in request order."""
        ...

    def claim(self, campaign_id: str, *, owner: str, until: datetime, now: datetime) -> bool:
        """Takes the right to work on the campaign until `until`, if nobody else holds it now."""
        ...

    def release(self, campaign_id: str, *, owner: str) -> None: ...

    def add_problems(self, campaign_id: str, problems: Iterable[ContactProblem]) -> None: ...

    def problems(self, campaign_id: str, *, limit: int) -> tuple[list[ContactProblem], dict[str, int]]:
        """The first `limit` problems in request order, and the count of each kind."""
        ...

    def add_step(self, campaign_id: str, step: CampaignStep) -> None: ...

    def steps(self, campaign_id: str) -> list[CampaignStep]: ...


class SuppressionRepository(Protocol):
    def add(self, entries: Sequence[Suppression]) -> int:
        """Adds the entries not there yet (by tenant and address key); returns how many were new."""
        ...

    def matching(self, tenant: str, keys: Iterable[str]) -> set[str]:
        """The keys among `keys` that are on the tenant's list."""
        ...

    def list(self, *, tenant: str, limit: int, after: TimePosition | None) -> list[Suppression]:
        """Newest first."""
        ...


@dataclass(frozen=True)
class SyncConflict:
    server_id: int
    vmta: str
    address: str
    reason: str


@dataclass(frozen=True)
class MailwizzSyncState:
    """The last quota sync of a tenant's MailWizz: when, how it ended, and the rows it had to leave alone."""

    tenant: str
    last_sync_time: datetime | None = None
    last_outcome: str = ""
    conflicts: tuple[SyncConflict, ...] = field(default_factory=tuple)


class MailwizzSyncRepository(Protocol):
    def get(self, tenant: str) -> MailwizzSyncState | None: ...

    def save(self, state: MailwizzSyncState) -> None: ...


class CampaignUnitOfWork(UnitOfWork, Protocol):
    campaigns: CampaignRepository
    suppressions: SuppressionRepository
    mailwizz_sync: MailwizzSyncRepository
