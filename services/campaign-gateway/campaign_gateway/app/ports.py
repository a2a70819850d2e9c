"""What the campaign and MailWizz use cases need from the world outside the service's database, as small
protocols: a tenant's MailWizz (its API and its delivery_server table), ip-pool, reputation, the DNS of recipient
domains, and where each PowerMTA node takes mail.

The adapters implementing them: `adapters/mailwizz_bindings.py` (MailWizz), `adapters/ippool_peer.py`,
`adapters/reputation_peer.py`, `adapters/recipient_dns.py`, `adapters/node_directory.py`. Use-case tests pass
fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from campaign_gateway.domain.preflight import DomainCheck, IpListing
from campaign_gateway.domain.recipients import RecipientDomain

if TYPE_CHECKING:
    from campaign_gateway.adapters.ippool_peer import AllocationResult, PoolIp, TenantDay
    from campaign_gateway.adapters.mailwizz_api import (
        BulkResult,
        CampaignSpec,
        CampaignSummary,
        ListSpec,
        MailwizzList,
        SubscriberInput,
        TemplateRef,
        ToggleOutcome,
    )
    from campaign_gateway.adapters.mailwizz_db import ApplyReport, Defaults, ServerRow
    from campaign_gateway.domain.quota_sync import CurrentServer, SyncPlan


class MailwizzApi(Protocol):
    """The calls of one tenant's MailWizz API the use cases make (adapters/mailwizz_api.MailwizzClient)."""

    def find_template_by_name(self, name: str) -> TemplateRef | None: ...

    def create_list(self, spec: ListSpec) -> str: ...

    def find_list_by_name(self, name: str) -> MailwizzList | None: ...

    def add_subscribers(
        self, list_uid: str, subscribers: Sequence[SubscriberInput], *, chunk_size: int
    ) -> BulkResult: ...

    def create_campaign(self, spec: CampaignSpec) -> str: ...

    def find_campaign_by_name(self, name: str) -> CampaignSummary | None: ...

    def pause_campaign(self, campaign_uid: str) -> ToggleOutcome: ...

    def resume_campaign(self, campaign_uid: str) -> ToggleOutcome: ...


class LockedServerTable(Protocol):
    """The delivery_server table while this sync alone may write it."""

    def rows(self) -> list[ServerRow]: ...

    def current_servers(self) -> list[CurrentServer]: ...

    def apply(self, plan: SyncPlan, *, defaults: Defaults) -> ApplyReport: ...


class DeliveryServerTable(Protocol):
    """One tenant's MailWizz `delivery_server` table (adapters/mailwizz_db.MailwizzDeliveryServers)."""

    def rows(self) -> list[ServerRow]: ...

    def exclusive(self) -> AbstractContextManager[LockedServerTable]: ...


@dataclass(frozen=True)
class BindingView:
    """What may be shown of a tenant's MailWizz settings: no key, no database user or password."""

    tenant: str
    api_origin: str
    auth: str  # "api-key" or "signed"
    database: str  # host:port/database
    table_prefix: str
    time_zone: str
    customer_id: int | None
    from_name: str
    from_email: str
    reply_to: str
    subject: str
    chunk_size: int


@dataclass(frozen=True)
class TenantMailwizz:
    view: BindingView
    api: MailwizzApi
    servers: DeliveryServerTable


class MailwizzDirectory(Protocol):
    def tenants(self) -> list[str]:
        """The tenants with a MailWizz binding, sorted."""
        ...

    def binding(self, tenant: str) -> TenantMailwizz | None: ...


class IpPool(Protocol):
    """ip-pool over gRPC (adapters/ippool_peer.IpPoolPeer)."""

    def list_ips(self, *, tenant_id: str = "", state: str = "") -> list[PoolIp]: ...

    def tenant_day(self, tenant_id: str) -> TenantDay: ...

    def allocate(
        self, *, tenant_id: str, volume: int, by_provider: dict[str, int], validate_only: bool
    ) -> AllocationResult: ...


@dataclass(frozen=True)
class TenantDomains:
    sending_domains: tuple[str, ...]
    tracking_domains: tuple[str, ...]
    checks: tuple[DomainCheck, ...]  # the latest verdict of each check; empty until checked


class Reputation(Protocol):
    """reputation over gRPC (adapters/reputation_peer.ReputationPeer)."""

    def tenant_domains(self, tenant: str) -> TenantDomains: ...

    def check_tenant_domains(self, tenant: str) -> TenantDomains: ...

    def ip_listing(self, address: str, *, tenant: str) -> IpListing: ...


class RecipientResolver(Protocol):
    """MX (else A/AAAA) of recipient domains (adapters/recipient_dns.DnsRecipientResolver)."""

    def lookup(self, domains: Sequence[str]) -> dict[str, RecipientDomain]: ...


class NodeDirectory(Protocol):
    """Where a PowerMTA node takes mail from MailWizz (its SMTP listener): the delivery servers' hostname."""

    def smtp_endpoint(self, node_name: str) -> tuple[str, int] | None: ...
