"""What the use cases need from storage: one unit of work over the service's database, with the MailWizz side's
repositories (campaigns, the tenants' suppression lists, the last quota sync of each tenant) and the PowerMTA
side's (nodes and deploys, node leases, the queues paused on each node, accounting state, bounce routes and deliveries).

The SQL implementation is `campaign_gateway.adapters.unit_of_work`; the use-case tests use an in-memory fake.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

import numpy as np

from campaign_gateway.app.delivery_views import (
    BounceRouteRecord,
    ClaimedDelivery,
    CursorState,
    DeliveryCounts,
    Deployment,
    NewDelivery,
    ProblemView,
)
from campaign_gateway.domain.accounting import AccountingRecord, DayTotals, Origin, TotalsKey
from campaign_gateway.domain.campaign import Campaign, CampaignState, CampaignStep
from campaign_gateway.domain.contacts import Contact, ContactProblem, Suppression
from campaign_gateway.domain.pmta_nodes import NodeRecord, NodeSpec
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
    """Each tenant's suppression list, one entry per (tenant, `Suppression.key`): what campaigns never send to. The
    API adds and removes entries; accounting adds the recipients of hard bounces and complaints."""

    def add(self, entries: Sequence[Suppression]) -> int:
        """Adds the entries not there yet (by tenant and address key); returns how many were new. An entry already
        there keeps its first reason and source."""
        ...

    def add_uncounted(self, entries: Sequence[Suppression]) -> None:
        """`add` without the count (accounting's batches never read it, and counting costs a returned row each)."""
        ...

    def remove(self, tenant: str, keys: Iterable[str]) -> int:
        """Removes the tenant's entries with these keys; returns how many there were."""
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


# ---------------------------------------------------------------- delivery: PowerMTA nodes, accounting, bounces


class PmtaNodeRepository(Protocol):
    def add(self, node: NodeRecord, *, token_sha256: str) -> None: ...

    def get(self, name: str) -> NodeRecord | None: ...

    def list(self, *, limit: int, after: str) -> list[NodeRecord]:
        """By name, after `after`."""
        ...

    def update_spec(self, spec: NodeSpec, *, now: datetime) -> None: ...

    def token_sha256(self, name: str) -> str | None: ...

    def set_token(self, name: str, token_sha256: str, *, now: datetime) -> None: ...

    def delete(self, name: str) -> bool: ...

    def record_deploy(self, name: str, *, deployed_sha256: str, deployed_text: str, consecutive_failures: int) -> None:
        """What the node runs now (as deployed), and its count of failed deploys in a row."""
        ...

    def smtp_endpoint(self, node_name: str) -> tuple[str, int] | None:
        """Where the node takes mail from MailWizz (the delivery servers made for its IPs), None for no such node."""
        ...


class DeploymentRepository(Protocol):
    def add(self, deployment: Deployment) -> None: ...

    def latest(self, node: str) -> Deployment | None: ...

    def list(self, node: str, *, limit: int, after: TimePosition | None) -> list[Deployment]:
        """Newest first."""
        ...


class LeaseRepository(Protocol):
    def acquire(self, node: str, purpose: str, owner: str, *, now: datetime, until: datetime) -> bool:
        """True when `owner` holds the lease now (it was free, expired, or already its own)."""
        ...

    def release(self, node: str, purpose: str, owner: str) -> None: ...


class QueueHoldRepository(Protocol):
    """The VMTAs whose queues this service paused on each node, and which IP each is."""

    def held(self, node: str) -> dict[str, str]:
        """vmta -> address, for the queues held on `node`."""
        ...

    def hold(self, node: str, vmta: str, address: str, *, now: datetime) -> None: ...

    def release(self, node: str, vmta: str) -> None: ...


class AccountingRepository(Protocol):
    def cursor(self, node: str) -> CursorState | None: ...

    def save_cursor(self, node: str, state: CursorState) -> None: ...

    def load_seen(self, node: str, hours: set[int]) -> set[bytes]: ...

    def add_seen(self, node: str, fresh: dict[int, list[bytes]]) -> None: ...

    def add_origins(self, items: list[tuple[str, Origin]], *, day: date) -> None: ...

    def add_origin_digests(self, digests: np.ndarray, slots: np.ndarray, origins: list[Origin], *, day: date) -> None:
        """`add_origins` for keys already digested (`origin_key_digest`): unique sorted uint64 digests, each with the
        index of its origin in `origins` (what `OriginIndex.fresh_digests` holds)."""
        ...

    def find_origins(self, keys: list[str], *, since: date) -> dict[str, Origin]:
        """Originals stored on or after `since` (older ones are past the time a late bounce or complaint comes)."""
        ...

    def pending(self, node: str) -> list[AccountingRecord]: ...

    def replace_pending(self, node: str, records: list[AccountingRecord], *, now: datetime) -> None: ...

    def add_totals(self, deltas: dict[TotalsKey, DayTotals]) -> None:
        """Adds the counts to the stored absolute totals."""
        ...

    def totals(self, *, address: str = "") -> dict[TotalsKey, DayTotals]: ...

    def unpushed(self, *, limit: int) -> list[tuple[TotalsKey, DayTotals, int]]:
        """Every fine-group row of the (address, day) pairs that changed since ip-pool last took them, with the
        version read (pass it to mark_pushed)."""
        ...

    def mark_pushed(self, rows: list[tuple[TotalsKey, int]]) -> None: ...

    def add_problems(self, node: str, problems: list[ProblemView]) -> None: ...

    def recent_problems(self, node: str, *, limit: int) -> list[ProblemView]: ...


class BounceRouteRepository(Protocol):
    def add(self, route: BounceRouteRecord) -> None: ...

    def get(self, route_id: str) -> BounceRouteRecord | None: ...

    def for_tenant(self, tenant_id: str) -> list[BounceRouteRecord]: ...

    def delete(self, route_id: str) -> bool: ...


class BounceDeliveryRepository(Protocol):
    def add_many(self, deliveries: list[NewDelivery]) -> int:
        """Stores the deliveries not stored yet (by id); returns how many were new."""
        ...

    def due(self, *, now: datetime, limit: int) -> list[str]: ...

    def claim(self, delivery_id: str, owner: str, *, now: datetime, until: datetime) -> ClaimedDelivery | None:
        """Leases a due delivery and counts the attempt about to be made; None when another worker has it."""
        ...

    def settle(
        self,
        delivery_id: str,
        owner: str,
        *,
        delivered: bool,
        now: datetime,
        next_attempt_at: datetime | None,
        error: str,
    ) -> None: ...

    def give_up_route(self, route_id: str, reason: str) -> int: ...

    def counts(self, route_id: str) -> DeliveryCounts: ...


class CampaignUnitOfWork(UnitOfWork, Protocol):
    campaigns: CampaignRepository
    suppressions: SuppressionRepository
    mailwizz_sync: MailwizzSyncRepository
    pmta_nodes: PmtaNodeRepository
    deployments: DeploymentRepository
    leases: LeaseRepository
    queue_holds: QueueHoldRepository
    accounting: AccountingRepository
    bounce_routes: BounceRouteRepository
    bounce_deliveries: BounceDeliveryRepository
