"""campaign-gateway's gRPC servicer: proto <-> use cases, nothing more (assembled in bootstrap.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from campaign_gateway.domain.campaign import Campaign
from campaign_gateway.domain.contacts import Contact
from emailengine.campaign.v1 import campaign_service_pb2 as pb
from emailengine.campaign.v1 import campaign_service_pb2_grpc as pb_grpc
from libs.interceptor import current_caller

if TYPE_CHECKING:
    from campaign_gateway.bootstrap import CampaignGatewayApp


def campaign_to_proto(campaign: Campaign) -> pb.Campaign:
    message = pb.Campaign(
        campaign_id=campaign.campaign_id,
        tenant=campaign.tenant,
        template_id=campaign.template_id,
        state=pb.CampaignState.Value(f"CAMPAIGN_STATE_{campaign.state.value}"),
        contact_count=campaign.contact_count,
        state_reason=campaign.state_reason,
    )
    message.create_time.FromDatetime(campaign.create_time)
    return message


class CampaignServicer(pb_grpc.CampaignServiceServicer):
    def __init__(self, app: CampaignGatewayApp):
        self._campaigns = app.campaigns

    def CreateCampaign(self, request: pb.CreateCampaignRequest, context: grpc.ServicerContext) -> pb.Campaign:
        contacts = [Contact(c.email, c.first_name, c.last_name, dict(c.fields)) for c in request.contacts]
        return campaign_to_proto(
            self._campaigns.create(
                current_caller(),
                tenant=request.tenant,
                template_id=request.template_id,
                name=request.name,
                contacts=contacts,
            )
        )

    def GetCampaign(self, request: pb.GetCampaignRequest, context: grpc.ServicerContext) -> pb.Campaign:
        return campaign_to_proto(self._campaigns.get(current_caller(), request.campaign_id))

    def ListCampaigns(
        self, request: pb.ListCampaignsRequest, context: grpc.ServicerContext
    ) -> pb.ListCampaignsResponse:
        found, token = self._campaigns.list(
            current_caller(), tenant=request.tenant, size=request.page_size, token=request.page_token
        )
        return pb.ListCampaignsResponse(campaigns=[campaign_to_proto(c) for c in found], next_page_token=token)
