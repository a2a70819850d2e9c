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
from campaign_gateway.adapters.bounce_webhook import BounceWebhookSender
from campaign_gateway.adapters.ippool_peer import IpPoolPeer
from campaign_gateway.adapters.mailwizz_api import RetryPolicy
from campaign_gateway.adapters.mailwizz_bindings import MailwizzBindings
from campaign_gateway.adapters.metrics_reader import SqlGatewayReadModel
from campaign_gateway.adapters.pmta_gateway import SshNodeGateway, SshSettings
from campaign_gateway.adapters.recipient_dns import DnsRecipientResolver, parse_nameservers
from campaign_gateway.adapters.reputation_peer import ReputationPeer
from campaign_gateway.adapters.unit_of_work import SqlCampaignUnitOfWork
from campaign_gateway.app.accounting import AccountingSettings, AccountingUseCases
from campaign_gateway.app.bounces import BounceSettings, BounceUseCases
from campaign_gateway.app.campaigns import CampaignPolicy, CampaignUseCases
from campaign_gateway.app.ip_events import IpEventHandlers
from campaign_gateway.app.mailwizz_sync import MailwizzQuotaSync
from campaign_gateway.app.metrics import GatewayCollector
from campaign_gateway.app.pmta_deploy import DeploySettings, DeployUseCases
from campaign_gateway.app.pmta_nodes import NodeUseCases
from campaign_gateway.config import CampaignGatewaySettings, load_config
from campaign_gateway.domain.bounce_forwarding import RetryPlan
from campaign_gateway.server import CampaignServicer, DeliveryServicer
from emailengine.campaign.v1 import campaign_service_pb2_grpc as pb_grpc
from emailengine.campaign.v1 import delivery_service_pb2_grpc as delivery_pb_grpc
from emailengine.ippool.v1 import events_pb2 as ippool_events
from libs.events import Subscriptions
from libs.jobs import Jobs, PeriodicJob
from libs.outbound import GuardedClient
from libs.runtime import Runtime, ServiceDefinition
from libs.service_client import ServiceClients

SERVICE = "campaign-gateway"


@dataclass
class CampaignGatewayApp:
    config: CampaignGatewaySettings
    campaigns: CampaignUseCases
    mailwizz: MailwizzQuotaSync
    nodes: NodeUseCases
    deploys: DeployUseCases
    accounting: AccountingUseCases
    bounces: BounceUseCases
    ip_events: IpEventHandlers
    unit_of_work: Callable[[], SqlCampaignUnitOfWork]


class JobScheduler:
    """The use cases' follow-up work, made jobs of this service (never done inside the caller's transaction)."""

    def __init__(self, runner: Jobs):
        self._jobs = runner

    def sync_tenant_quotas(self, tenant: str) -> None:
        self._jobs.enqueue(jobs.sync_tenant_quotas, tenant)

    def deploy_node(self, name: str, trigger: str) -> None:
        self._jobs.enqueue(jobs.deploy_node, name, trigger)

    def deploy_ip_node(self, address: str, trigger: str) -> None:
        self._jobs.enqueue(jobs.deploy_ip_node, address, trigger)

    def apply_ip_state(self, address: str, state: str) -> None:
        self._jobs.enqueue(jobs.apply_ip_state, address, state)

    def ingest_node(self, name: str) -> None:
        self._jobs.enqueue(jobs.ingest_node, name)


def build(rt: Runtime) -> CampaignGatewayApp:
    def unit_of_work() -> SqlCampaignUnitOfWork:
        return SqlCampaignUnitOfWork(rt.db, source=SERVICE, clock=rt.clock)

    config: CampaignGatewaySettings = rt.config
    clients = ServiceClients(rt.settings, SERVICE)
    ippool = IpPoolPeer(clients)
    # MailWizz URLs and bounce webhooks are user-supplied: every call goes through the guarded client (allow-list,
    # deadline, size cap).
    http = GuardedClient(rt.settings.outbound_policy(), user_agent="email-engine-campaign-gateway/1")
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
    scheduler = JobScheduler(rt.jobs)
    quota_sync = MailwizzQuotaSync(
        unit_of_work, rt.clock, directory=bindings, ippool=ippool, request_sync=scheduler.sync_tenant_quotas
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
    gateway = SshNodeGateway(
        SshSettings(
            client_key_file=config.pmta_ssh_key_file,
            connect_timeout=config.pmta_connect_timeout_seconds,
            command_timeout=config.pmta_command_timeout_seconds,
            connect_attempts=config.pmta_connect_attempts,
        )
    )
    rt.platform_metrics.register(
        GatewayCollector(
            rt.platform_metrics.read_failures,
            SqlGatewayReadModel(rt.db),
            lambda: {ip.address: ip.tenant_id for ip in ippool.list_ips()},
            rt.clock,
        )
    )
    nodes = NodeUseCases(unit_of_work, rt.clock)
    deploys = DeployUseCases(
        unit_of_work,
        rt.clock,
        ippool=ippool,
        nodes=gateway,
        scheduler=scheduler,
        settings=DeploySettings(
            lease=timedelta(seconds=config.pmta_lease_seconds),
            accounting_forwarder_command=config.pmta_accounting_forwarder_command or None,
        ),
    )
    return CampaignGatewayApp(
        config=config,
        campaigns=campaigns,
        mailwizz=quota_sync,
        nodes=nodes,
        deploys=deploys,
        accounting=AccountingUseCases(
            unit_of_work,
            rt.clock,
            ippool=ippool,
            nodes=gateway,
            scheduler=scheduler,
            settings=AccountingSettings(
                pull_max_bytes=config.accounting_pull_max_bytes,
                lease=timedelta(seconds=config.accounting_lease_seconds),
            ),
            check_token=nodes.check_forwarder_token,
        ),
        bounces=BounceUseCases(
            unit_of_work,
            rt.clock,
            webhooks=BounceWebhookSender(http),
            settings=BounceSettings(
                retry=RetryPlan(max_delay=timedelta(seconds=config.bounce_retry_max_delay_seconds))
            ),
        ),
        ip_events=IpEventHandlers(mailwizz=quota_sync, deploys=deploys),
        unit_of_work=unit_of_work,
    )


def add_servicers(app: CampaignGatewayApp, server: grpc.Server) -> None:
    pb_grpc.add_CampaignServiceServicer_to_server(CampaignServicer(app), server)
    delivery_pb_grpc.add_DeliveryServiceServicer_to_server(DeliveryServicer(app), server)


def subscriptions(app: CampaignGatewayApp) -> Subscriptions:
    # Each handler only enqueues jobs (see app/ip_events.py for why).
    return Subscriptions(
        unit_of_work=app.unit_of_work,
        handlers={
            ippool_events.IpRegistered: app.ip_events.on_ip_registered,
            ippool_events.IpStateChanged: app.ip_events.on_ip_state_changed,
            ippool_events.IpQuotaChanged: app.ip_events.on_ip_quota_changed,
        },
    )


def periodic_jobs(config: CampaignGatewaySettings) -> list[PeriodicJob]:
    return [
        PeriodicJob("campaign-gateway-quota-sync", jobs.sync_quotas, timedelta(seconds=config.quota_sync_seconds)),
        PeriodicJob("pmta-deploy-all", jobs.deploy_all, timedelta(seconds=config.pmta_deploy_interval_seconds)),
        PeriodicJob(
            "accounting-ingest-all", jobs.ingest_all, timedelta(seconds=config.accounting_pull_interval_seconds)
        ),
        PeriodicJob(
            "accounting-push-stats", jobs.push_stats, timedelta(seconds=config.accounting_stats_interval_seconds)
        ),
        PeriodicJob("bounce-deliveries", jobs.deliver_bounces, timedelta(seconds=config.bounce_delivery_poll_seconds)),
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
    more_grpc_services=("emailengine.campaign.v1.DeliveryService",),
)
