"""What the use cases need from storage: a unit of work with the campaign repository, and the delivery side's
(PowerMTA nodes and deploys, node leases, accounting state, suppressions, bounce routes and deliveries).

The SQL implementation is `campaign_gateway.adapters.unit_of_work`; the use-case tests use an in-memory fake.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from campaign_gateway.app.delivery_views import (
    BounceRouteRecord,
    ClaimedDelivery,
    CursorState,
    DeliveryCounts,
    Deployment,
    NewDelivery,
    ProblemView,
    SuppressionView,
)
from campaign_gateway.domain.accounting import AccountingRecord, DayTotals, Origin, TotalsKey
from campaign_gateway.domain.campaign import Campaign
from campaign_gateway.domain.contacts import Contact
from campaign_gateway.domain.pmta_nodes import NodeRecord, NodeSpec
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
        """The `NodeDirectory` the MailWizz side reads: where a node's IPs take mail, None for no such node."""
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


class AccountingRepository(Protocol):
    def cursor(self, node: str) -> CursorState | None: ...

    def save_cursor(self, node: str, state: CursorState) -> None: ...

    def load_seen(self, node: str, hours: set[int]) -> set[bytes]: ...

    def add_seen(self, node: str, fresh: dict[int, list[bytes]]) -> None: ...

    def add_origins(self, items: list[tuple[str, Origin]], *, day: date) -> None: ...

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


class SuppressionRepository(Protocol):
    """`suppressions(tenant_id, email, reason, source, created_at)`: what campaigns never send to."""

    def add_many(self, tenant_id: str, entries: list[tuple[str, str]], *, source: str, now: datetime) -> int:
        """(email, reason) pairs, emails lower-cased; an address already listed keeps its row. Returns the new."""
        ...

    def is_suppressed_many(self, tenant_id: str, emails: list[str]) -> set[str]:
        """The given addresses (lower-cased) that are suppressed for the tenant."""
        ...

    def remove_many(self, tenant_id: str, emails: list[str]) -> int: ...

    def list(self, tenant_id: str, *, limit: int, after: str) -> list[SuppressionView]: ...


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


class DeliveryUnitOfWork(UnitOfWork, Protocol):
    pmta_nodes: PmtaNodeRepository
    deployments: DeploymentRepository
    leases: LeaseRepository
    accounting: AccountingRepository
    suppressions: SuppressionRepository
    bounce_routes: BounceRouteRepository
    bounce_deliveries: BounceDeliveryRepository
