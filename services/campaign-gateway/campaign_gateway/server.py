"""campaign-gateway service entry point: the gRPC servicer and the wiring of its use cases."""

from __future__ import annotations

from pathlib import Path

import grpc

from campaign_gateway.app.campaigns import CampaignRecord, CampaignUseCases
from campaign_gateway.domain.contacts import Contact
from emailengine.campaign.v1 import campaign_service_pb2 as pb
from emailengine.campaign.v1 import campaign_service_pb2_grpc as pb_grpc
from libs.interceptor import current_caller
from libs.server import Runtime, ServiceDefinition


def campaign_to_proto(record: CampaignRecord) -> pb.Campaign:
    message = pb.Campaign(
        campaign_id=record.campaign_id,
        tenant=record.tenant,
        template_id=record.template_id,
        state=pb.CampaignState.Value(f"CAMPAIGN_STATE_{record.state}"),
        contact_count=record.contact_count,
        state_reason=record.state_reason,
    )
    message.create_time.FromDatetime(record.create_time)
    return message


class CampaignServicer(pb_grpc.CampaignServiceServicer):
    def __init__(self, campaigns: CampaignUseCases):
        self._campaigns = campaigns

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
        return pb.ListCampaignsResponse(campaigns=[campaign_to_proto(r) for r in found], next_page_token=token)


def wire(rt: Runtime) -> None:
    pb_grpc.add_CampaignServiceServicer_to_server(
        CampaignServicer(CampaignUseCases(rt.db, rt.clock.now)), rt.grpc_server
    )


DEFINITION = ServiceDefinition(
    name="campaign-gateway",
    migrations=Path(__file__).parent / "adapters" / "migrations",
    wire=wire,
)
