"""campaign-gateway's jobs: module-level functions of the application, which the in-process runner or an RQ
worker (`emailengine worker campaign-gateway`) calls by name.

MailWizz: `sync_quotas` is the periodic full quota sync (every EE_CAMPAIGN_GATEWAY_QUOTA_SYNC_SECONDS);
`sync_tenant_quotas` is the one an ip-pool event asks for. Both read the IP pool when they run and write under the
MailWizz database's named lock, so running them twice, or on N workers at once, writes the same rows once.

PowerMTA: work on a node is one job per node, serialised by the node's lease, so any number of workers can run
them. A job that could not reach its node records it (and it is reported), then raises `NodeNotReached` so the job
runner tries it again with backoff (an RQ worker: after 5 s, 15 s, 1 min, 5 min, 15 min): a node back within
minutes gets the configuration and queue commands it missed without waiting for the periodic deploy of every node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaign_gateway.app.delivery_views import Deployment, IngestReport
from campaign_gateway.domain.pmta_nodes import DeployOutcome

if TYPE_CHECKING:
    from campaign_gateway.bootstrap import CampaignGatewayApp


# ---------------------------------------------------------------- MailWizz quotas


def sync_quotas(app: CampaignGatewayApp) -> int:
    """Syncs every tenant with a MailWizz binding; returns how many synced (a failing one is recorded)."""
    return len(app.mailwizz.sync_all())


def sync_tenant_quotas(app: CampaignGatewayApp, tenant: str) -> int:
    """Syncs one tenant now; returns the number of rows written or created."""
    report = app.mailwizz.sync_tenant(tenant)
    return len(report.written) + len(report.created)


# ---------------------------------------------------------------- PowerMTA nodes, accounting, bounces


def deploy_all(app: CampaignGatewayApp) -> int:
    """Hourly: one deploy job per registered node."""
    return app.deploys.deploy_all()


class NodeNotReached(Exception):
    """The node could not be reached; what the job did is recorded. Raised for the job runner to try it again."""


def _reached(deployment: Deployment | None) -> Deployment | None:
    if deployment is not None and deployment.outcome is DeployOutcome.UNREACHABLE:
        raise NodeNotReached(f"pmta node {deployment.node!r} not reached: {deployment.detail}")
    return deployment


def deploy_node(app: CampaignGatewayApp, name: str, trigger: str) -> Deployment | None:
    return _reached(app.deploys.deploy_node(name, trigger))


def deploy_ip_node(app: CampaignGatewayApp, address: str, trigger: str) -> Deployment | None:
    """The deploy of the node an IP lives on (after an IpQuotaChanged)."""
    return _reached(app.deploys.deploy_ip_node(address, trigger))


def apply_ip_state(app: CampaignGatewayApp, address: str, state: str) -> str:
    """Pause (or resume) the IP's queues on its node at once, then redeploy the node (after an IpStateChanged)."""
    applied = app.deploys.apply_ip_state(address, state)
    if applied.unreachable:
        raise NodeNotReached(f"the node of {address} not reached: {applied.done}")
    return applied.done


def ingest_all(app: CampaignGatewayApp) -> int:
    """Every pull interval: one ingestion job per node whose accounting is pulled."""
    return app.accounting.ingest_all()


def ingest_node(app: CampaignGatewayApp, name: str) -> IngestReport:
    return app.accounting.ingest_node(name)


def push_stats(app: CampaignGatewayApp) -> int:
    """Totals ip-pool has not taken yet (it was down during an ingestion) are sent again."""
    return app.accounting.push_stats()


def deliver_bounces(app: CampaignGatewayApp) -> int:
    return app.bounces.deliver_due()
