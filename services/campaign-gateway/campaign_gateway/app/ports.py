"""What the use cases need from the world outside the service's database, as small protocols: a tenant's MailWizz
(its API and its delivery_server table), ip-pool, reputation, the DNS of recipient domains, the PowerMTA nodes
(over SSH), bounce-forwarding webhooks, and the job runner. (Where each PowerMTA node takes mail from MailWizz is
in the service's own database: the node registry, `uow.pmta_nodes`.)

The adapters implementing them: `adapters/mailwizz_bindings.py` (MailWizz), `adapters/ippool_peer.py`,
`adapters/reputation_peer.py`, `adapters/recipient_dns.py`, `adapters/pmta_gateway.py`,
`adapters/bounce_webhook.py`, and `bootstrap.JobScheduler`. Use-case tests pass fakes. What travels through them
is plain data (the adapters' dataclasses).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from campaign_gateway.domain.pmta_nodes import NodeSpec
from campaign_gateway.domain.preflight import DomainCheck, IpListing
from campaign_gateway.domain.recipients import RecipientDomain

if TYPE_CHECKING:
    from campaign_gateway.adapters.bounce_webhook import WebhookAnswer
    from campaign_gateway.adapters.ippool_peer import AllocationResult, PoolIp, TenantDay
    from campaign_gateway.adapters.ippool_peer import DayTotals as PoolDayTotals
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
    from campaign_gateway.adapters.pmta_node import AccountingPull, CommandResult, DeployResult, RemoteFileCursor
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

    def record_delivery_stats(self, totals: Sequence[PoolDayTotals]) -> int:
        """Absolute day totals per (address, day, provider): ip-pool replaces its rows with them."""
        ...


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


class NodeGateway(Protocol):
    """The PowerMTA nodes over SSH (adapters/pmta_gateway.SshNodeGateway)."""

    @property
    def configured(self) -> bool:
        """False without an SSH client key: nodes are planned against their last deploy, never contacted."""
        ...

    def read_config(self, spec: NodeSpec) -> str | None: ...

    def deploy(self, spec: NodeSpec, text: str, *, force: bool) -> DeployResult: ...

    def pause(self, spec: NodeSpec, vmta: str) -> CommandResult: ...

    def resume(self, spec: NodeSpec, vmta: str) -> CommandResult: ...

    def pull(self, spec: NodeSpec, cursor: RemoteFileCursor | None, *, max_bytes: int) -> AccountingPull: ...


class Webhooks(Protocol):
    """Signed bounce-forwarding requests (adapters/bounce_webhook.BounceWebhookSender)."""

    def send(self, *, url: str, secret: str, body: bytes, delivery_id: str, now: datetime) -> WebhookAnswer: ...


class Scheduler(Protocol):
    """Work handed to the job runner (a worker, or the in-process pool), never done inside the caller's transaction."""

    def deploy_node(self, name: str, trigger: str) -> None: ...

    def deploy_ip_node(self, address: str, trigger: str) -> None:
        """Deploy the node the IP lives on (found in ip-pool by the job)."""
        ...

    def apply_ip_state(self, address: str, state: str) -> None: ...

    def ingest_node(self, name: str) -> None: ...
