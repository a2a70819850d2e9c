"""campaign-gateway's gRPC servicer: proto <-> use cases, nothing more (assembled in bootstrap.py; the mapping is
in mapping.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import grpc

from campaign_gateway.domain.contacts import Contact
from campaign_gateway.mapping import (
    binding_to_proto,
    campaign_to_proto,
    contacts_from,
    report_to_proto,
    request_from,
    state_from,
    suppression_to_proto,
    sync_report_to_proto,
)
from emailengine.campaign.v1 import campaign_service_pb2 as pb
from emailengine.campaign.v1 import campaign_service_pb2_grpc as pb_grpc
from libs.errors import InvalidArgument
from libs.interceptor import current_caller

if TYPE_CHECKING:
    from campaign_gateway.bootstrap import CampaignGatewayApp


class CampaignServicer(pb_grpc.CampaignServiceServicer):
    def __init__(self, app: CampaignGatewayApp):
        self._campaigns = app.campaigns
        self._mailwizz = app.mailwizz
        self._max_upload = app.config.max_contacts_per_upload

    def CreateCampaign(self, request: pb.CreateCampaignRequest, context: grpc.ServicerContext) -> pb.Campaign:
        return report_to_proto(self._campaigns.create(current_caller(), request_from(request)))

    def UploadCampaign(
        self, request_iterator: Iterator[pb.UploadCampaignRequest], context: grpc.ServicerContext
    ) -> pb.Campaign:
        header: pb.CreateCampaignRequest | None = None
        contacts: list[Contact] = []
        for index, item in enumerate(request_iterator):
            kind = item.WhichOneof("item")
            if index == 0:
                if kind != "header":
                    raise InvalidArgument("header", "the first message of the stream must be the header")
                header = item.header
                contacts.extend(contacts_from(header.contacts))
            elif kind == "contacts":
                contacts.extend(contacts_from(item.contacts.contacts))
            else:
                raise InvalidArgument("header", f"message {index}: only the first message may be a header")
            if len(contacts) > self._max_upload:
                raise InvalidArgument("contacts", f"at most {self._max_upload} contacts per upload")
        if header is None:
            raise InvalidArgument("header", "the stream is empty")
        return report_to_proto(self._campaigns.create(current_caller(), request_from(header, contacts)))

    def GetCampaign(self, request: pb.GetCampaignRequest, context: grpc.ServicerContext) -> pb.Campaign:
        return report_to_proto(self._campaigns.get(current_caller(), request.campaign_id))

    def ListCampaigns(
        self, request: pb.ListCampaignsRequest, context: grpc.ServicerContext
    ) -> pb.ListCampaignsResponse:
        found, token = self._campaigns.list(
            current_caller(),
            tenant=request.tenant,
            state=state_from(request.state),
            size=request.page_size,
            token=request.page_token,
        )
        return pb.ListCampaignsResponse(campaigns=[campaign_to_proto(c) for c in found], next_page_token=token)

    def PauseCampaign(self, request: pb.PauseCampaignRequest, context: grpc.ServicerContext) -> pb.Campaign:
        return report_to_proto(self._campaigns.pause(current_caller(), request.campaign_id))

    def ResumeCampaign(self, request: pb.ResumeCampaignRequest, context: grpc.ServicerContext) -> pb.Campaign:
        return report_to_proto(self._campaigns.resume(current_caller(), request.campaign_id))

    def AddSuppressions(
        self, request: pb.AddSuppressionsRequest, context: grpc.ServicerContext
    ) -> pb.AddSuppressionsResponse:
        added, present = self._campaigns.add_suppressions(
            current_caller(), tenant=request.tenant, entries=[(e.email, e.reason) for e in request.entries]
        )
        return pb.AddSuppressionsResponse(added=added, already_present=present)

    def ListSuppressions(
        self, request: pb.ListSuppressionsRequest, context: grpc.ServicerContext
    ) -> pb.ListSuppressionsResponse:
        found, token = self._campaigns.list_suppressions(
            current_caller(), tenant=request.tenant, size=request.page_size, token=request.page_token
        )
        return pb.ListSuppressionsResponse(suppressions=[suppression_to_proto(s) for s in found], next_page_token=token)

    def GetMailwizzBinding(
        self, request: pb.GetMailwizzBindingRequest, context: grpc.ServicerContext
    ) -> pb.MailwizzBinding:
        return binding_to_proto(self._mailwizz.binding(current_caller(), request.tenant))

    def ListMailwizzBindings(
        self, request: pb.ListMailwizzBindingsRequest, context: grpc.ServicerContext
    ) -> pb.ListMailwizzBindingsResponse:
        return pb.ListMailwizzBindingsResponse(
            bindings=[binding_to_proto(b) for b in self._mailwizz.bindings(current_caller())]
        )

    def PlanQuotaSync(self, request: pb.PlanQuotaSyncRequest, context: grpc.ServicerContext) -> pb.QuotaSyncReport:
        return sync_report_to_proto(self._mailwizz.plan(current_caller(), request.tenant))

    def SyncQuotas(self, request: pb.SyncQuotasRequest, context: grpc.ServicerContext) -> pb.QuotaSyncReport:
        return sync_report_to_proto(self._mailwizz.sync(current_caller(), request.tenant))
