"""The campaign-gateway's jobs: module-level functions of the application, which the in-process runner or an RQ
worker (`emailengine worker campaign-gateway`) calls. Work on a PowerMTA node is one job per node, serialised by
the node's lease, so any number of workers can run them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaign_gateway.app.delivery_views import Deployment, IngestReport

if TYPE_CHECKING:
    from campaign_gateway.bootstrap import CampaignGatewayApp


def deploy_all(app: CampaignGatewayApp) -> int:
    """Hourly: one deploy job per registered node."""
    return app.deploys.deploy_all()


def deploy_node(app: CampaignGatewayApp, name: str, trigger: str) -> Deployment | None:
    return app.deploys.deploy_node(name, trigger)


def deploy_ip_node(app: CampaignGatewayApp, address: str, trigger: str) -> Deployment | None:
    """The deploy of the node an IP lives on (after an IpQuotaChanged)."""
    return app.deploys.deploy_ip_node(address, trigger)


def apply_ip_state(app: CampaignGatewayApp, address: str, state: str) -> str:
    """Pause (or resume) the IP's queues on its node at once, then redeploy the node (after an IpStateChanged)."""
    return app.deploys.apply_ip_state(address, state)


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
