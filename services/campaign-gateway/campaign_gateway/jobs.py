"""campaign-gateway's jobs: module-level functions of the application (RQ finds them by name).

`sync_quotas` is the periodic full quota sync (every EE_CAMPAIGN_GATEWAY_QUOTA_SYNC_SECONDS); `sync_tenant_quotas`
is the one an ip-pool event asks for. Both read the IP pool when they run and write under the MailWizz
database's named lock, so running them twice, or on N workers at once, writes the same rows once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from campaign_gateway.bootstrap import CampaignGatewayApp


def sync_quotas(app: CampaignGatewayApp) -> int:
    """Syncs every tenant with a MailWizz binding; returns how many synced (a failing one is recorded)."""
    return len(app.mailwizz.sync_all())


def sync_tenant_quotas(app: CampaignGatewayApp, tenant: str) -> int:
    """Syncs one tenant now; returns the number of rows written or created."""
    report = app.mailwizz.sync_tenant(tenant)
    return len(report.written) + len(report.created)
