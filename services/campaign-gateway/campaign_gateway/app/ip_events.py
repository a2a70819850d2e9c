"""What ip-pool's IP events start in the gateway: each reaches both the tenant's MailWizz (its delivery servers'
quotas and status) and the IP's PowerMTA node (its configuration, and at once its queues on standby).

    handlers = IpEventHandlers(mailwizz=MailwizzQuotaSync(...), deploys=DeployUseCases(...))
    handlers.on_ip_registered / on_ip_state_changed / on_ip_quota_changed(uow, envelope, event)

One handler per event, so the consumer marks the event handled once, after both sides have taken it. Each side
only enqueues a job (`jobs.py`) inside the consumer's transaction: the jobs read the IP pool when they run, so a
redelivered or late event asks for work that is still right.
"""

from __future__ import annotations

from campaign_gateway.app.mailwizz_sync import MailwizzQuotaSync
from campaign_gateway.app.pmta_deploy import DeployUseCases
from campaign_gateway.app.unit_of_work import CampaignUnitOfWork
from emailengine.ippool.v1 import events_pb2 as ippool_events
from emailengine.platform.v1 import event_pb2


class IpEventHandlers:
    def __init__(self, *, mailwizz: MailwizzQuotaSync, deploys: DeployUseCases):
        self._mailwizz = mailwizz
        self._deploys = deploys

    def on_ip_registered(
        self, uow: CampaignUnitOfWork, envelope: event_pb2.EventEnvelope, event: ippool_events.IpRegistered
    ) -> None:
        # PowerMTA's side needs none of its own: a registration that gives the IP a quota publishes IpQuotaChanged
        # too, and the hourly deploy takes any other.
        self._mailwizz.on_ip_registered(uow, envelope, event)

    def on_ip_state_changed(
        self, uow: CampaignUnitOfWork, envelope: event_pb2.EventEnvelope, event: ippool_events.IpStateChanged
    ) -> None:
        self._deploys.on_ip_state_changed(uow, envelope, event)
        self._mailwizz.on_ip_state_changed(uow, envelope, event)

    def on_ip_quota_changed(
        self, uow: CampaignUnitOfWork, envelope: event_pb2.EventEnvelope, event: ippool_events.IpQuotaChanged
    ) -> None:
        self._deploys.on_ip_quota_changed(uow, envelope, event)
        self._mailwizz.on_ip_quota_changed(uow, envelope, event)
