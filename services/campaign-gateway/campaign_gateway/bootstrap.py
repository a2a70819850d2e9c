"""The campaign-gateway assembled: its application (use cases over its adapters), and its definition for the
platform.

`DEFINITION` is registered as the `campaign-gateway` entry point of `emailengine.services` (pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc

from campaign_gateway import jobs
from campaign_gateway.adapters.ippool_peer import IpPoolPeer
from campaign_gateway.adapters.mailwizz_api import RetryPolicy
from campaign_gateway.adapters.mailwizz_bindings import MailwizzBindings
from campaign_gateway.adapters.node_directory import SettingsNodeDirectory
from campaign_gateway.adapters.recipient_dns import DnsRecipientResolver, parse_nameservers
from campaign_gateway.adapters.reputation_peer import ReputationPeer
from campaign_gateway.adapters.unit_of_work import SqlCampaignUnitOfWork
from campaign_gateway.app.campaigns import CampaignPolicy, CampaignUseCases
from campaign_gateway.app.mailwizz_sync import MailwizzQuotaSync
from campaign_gateway.config import CampaignGatewaySettings, load_config
from campaign_gateway.server import CampaignServicer
from emailengine.campaign.v1 import campaign_service_pb2_grpc as pb_grpc
from emailengine.ippool.v1 import events_pb2 as ippool_events
from libs.events import Subscriptions
from libs.jobs import PeriodicJob
from libs.outbound import GuardedClient
from libs.runtime import Runtime, ServiceDefinition
from libs.service_client import ServiceClients

SERVICE = "campaign-gateway"


@dataclass
class CampaignGatewayApp:
    config: CampaignGatewaySettings
    campaigns: CampaignUseCases
    mailwizz: MailwizzQuotaSync
    unit_of_work: Callable[[], SqlCampaignUnitOfWork]


def build(rt: Runtime) -> CampaignGatewayApp:
    def unit_of_work() -> SqlCampaignUnitOfWork:
        return SqlCampaignUnitOfWork(rt.db, source=SERVICE, clock=rt.clock)

    config: CampaignGatewaySettings = rt.config
    clients = ServiceClients(rt.settings, SERVICE)
    ippool = IpPoolPeer(clients)
    # MailWizz URLs are user-supplied: every call goes through the guarded client (allow-list, deadline, cap).
    http = GuardedClient(rt.settings.outbound_policy())
    bindings = MailwizzBindings(
        config.mailwizz,
        http,
        retry=RetryPolicy(
            attempts=config.mailwizz_attempts,
            first_wait=config.mailwizz_first_wait_seconds,
            max_wait=config.mailwizz_max_wait_seconds,
        ),
        max_response_bytes=config.mailwizz_max_response_bytes,
    )
    rt.on_stop.extend([bindings.close, http.close, clients.close])
    quota_sync = MailwizzQuotaSync(
        unit_of_work,
        rt.clock,
        directory=bindings,
        ippool=ippool,
        nodes=SettingsNodeDirectory(config.pmta_smtp_hosts),
        request_sync=lambda tenant: rt.jobs.enqueue(jobs.sync_tenant_quotas, tenant),
    )
    campaigns = CampaignUseCases(
        unit_of_work,
        rt.clock,
        policy=CampaignPolicy(
            max_contacts=config.max_contacts_per_request,
            max_reported_problems=config.max_reported_problems,
            attempts=config.mailwizz_attempts,
            first_wait_seconds=config.mailwizz_first_wait_seconds,
            max_wait_seconds=config.mailwizz_max_wait_seconds,
            lease_seconds=config.campaign_lease_seconds,
            check_recipient_domains=config.check_recipient_domains,
        ),
        directory=bindings,
        ippool=ippool,
        reputation=ReputationPeer(clients),
        resolver=DnsRecipientResolver(
            parse_nameservers(config.dns_nameservers), timeout=config.dns_timeout, concurrency=config.dns_concurrency
        ),
        quota_sync=quota_sync,
    )
    return CampaignGatewayApp(config=config, campaigns=campaigns, mailwizz=quota_sync, unit_of_work=unit_of_work)


def add_servicers(app: CampaignGatewayApp, server: grpc.Server) -> None:
    pb_grpc.add_CampaignServiceServicer_to_server(CampaignServicer(app), server)


def subscriptions(app: CampaignGatewayApp) -> Subscriptions:
    # Each handler only asks for a sync of the IP's tenant (see app/mailwizz_sync.py for why).
    return Subscriptions(
        unit_of_work=app.unit_of_work,
        handlers={
            ippool_events.IpRegistered: app.mailwizz.on_ip_registered,
            ippool_events.IpStateChanged: app.mailwizz.on_ip_state_changed,
            ippool_events.IpQuotaChanged: app.mailwizz.on_ip_quota_changed,
        },
    )


def periodic_jobs(config: CampaignGatewaySettings) -> list[PeriodicJob]:
    return [
        PeriodicJob("campaign-gateway-quota-sync", jobs.sync_quotas, timedelta(seconds=config.quota_sync_seconds)),
    ]


DEFINITION = ServiceDefinition(
    name=SERVICE,
    grpc_service="emailengine.campaign.v1.CampaignService",
    migrations=Path(__file__).parent / "adapters" / "migrations",
    build=build,
    add_servicers=add_servicers,
    load_config=load_config,
    subscriptions=subscriptions,
    periodic_jobs=periodic_jobs,
)
