"""campaign-gateway's gRPC servicers, `CampaignService` (campaigns, suppression lists, MailWizz bindings) and
`DeliveryService` (PowerMTA nodes, accounting, bounce routes): proto <-> use cases, nothing more (assembled in
bootstrap.py; the mapping is in mapping.py and delivery_mapping.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import empty_pb2

from campaign_gateway import delivery_mapping as dm
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
from emailengine.campaign.v1 import delivery_service_pb2 as delivery_pb
from emailengine.campaign.v1 import delivery_service_pb2_grpc as delivery_pb_grpc
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

    def RemoveSuppressions(
        self, request: pb.RemoveSuppressionsRequest, context: grpc.ServicerContext
    ) -> pb.RemoveSuppressionsResponse:
        removed, absent = self._campaigns.remove_suppressions(
            current_caller(), tenant=request.tenant, emails=list(request.emails)
        )
        return pb.RemoveSuppressionsResponse(removed=removed, not_present=absent)

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


FORWARDER_TOKEN_HEADER = "x-emailengine-forwarder-token"


class DeliveryServicer(delivery_pb_grpc.DeliveryServiceServicer):
    """PowerMTA nodes, their configuration and accounting, and bounce routes."""

    def __init__(self, app: CampaignGatewayApp):
        self._nodes = app.nodes
        self._deploys = app.deploys
        self._accounting = app.accounting
        self._bounces = app.bounces

    def CreatePmtaNode(self, request: delivery_pb.CreatePmtaNodeRequest, context: grpc.ServicerContext) -> Any:
        return dm.node_to_proto(self._nodes.create(current_caller(), dm.spec_from_proto(request.pmta_node)))

    def GetPmtaNode(self, request: delivery_pb.GetPmtaNodeRequest, context: grpc.ServicerContext) -> Any:
        return dm.node_to_proto(self._nodes.get(current_caller(), request.name))

    def ListPmtaNodes(self, request: delivery_pb.ListPmtaNodesRequest, context: grpc.ServicerContext) -> Any:
        found, token = self._nodes.list(current_caller(), size=request.page_size, token=request.page_token)
        return delivery_pb.ListPmtaNodesResponse(
            pmta_nodes=[dm.node_to_proto(view) for view in found], next_page_token=token
        )

    def UpdatePmtaNode(self, request: delivery_pb.UpdatePmtaNodeRequest, context: grpc.ServicerContext) -> Any:
        paths = list(request.update_mask.paths) or dm.present_fields(request.pmta_node)
        changes = dm.node_changes(request.pmta_node, [p for p in paths if p != "name"])
        return dm.node_to_proto(self._nodes.update(current_caller(), request.pmta_node.name, changes))

    def DeletePmtaNode(self, request: delivery_pb.DeletePmtaNodeRequest, context: grpc.ServicerContext) -> Any:
        self._nodes.delete(current_caller(), request.name)
        return empty_pb2.Empty()

    def RotateForwarderToken(
        self, request: delivery_pb.RotateForwarderTokenRequest, context: grpc.ServicerContext
    ) -> Any:
        return dm.node_to_proto(self._nodes.rotate_token(current_caller(), request.name))

    def PlanPmtaConfig(self, request: delivery_pb.PlanPmtaConfigRequest, context: grpc.ServicerContext) -> Any:
        plans = self._deploys.plan(current_caller(), list(request.names))
        return delivery_pb.PlanPmtaConfigResponse(plans=[dm.plan_to_proto(plan) for plan in plans])

    def DeployPmtaConfig(self, request: delivery_pb.DeployPmtaConfigRequest, context: grpc.ServicerContext) -> Any:
        return dm.deployment_to_proto(self._deploys.deploy(current_caller(), request.name, force=request.force))

    def ListPmtaDeployments(
        self, request: delivery_pb.ListPmtaDeploymentsRequest, context: grpc.ServicerContext
    ) -> Any:
        found, token = self._deploys.deployments(
            current_caller(), request.name, size=request.page_size, token=request.page_token
        )
        return delivery_pb.ListPmtaDeploymentsResponse(
            deployments=[dm.deployment_to_proto(d) for d in found], next_page_token=token
        )

    def PushAccounting(self, request: delivery_pb.PushAccountingRequest, context: grpc.ServicerContext) -> Any:
        metadata = dict(context.invocation_metadata() or ())
        token = str(metadata.get(FORWARDER_TOKEN_HEADER, ""))
        return dm.push_to_proto(self._accounting.push(request.name, token, bytes(request.body.data)))

    def CreateBounceRoute(self, request: delivery_pb.CreateBounceRouteRequest, context: grpc.ServicerContext) -> Any:
        route = request.bounce_route
        view = self._bounces.create_route(
            current_caller(),
            request.tenant_id or route.tenant_id,
            url=route.url,
            secret=route.secret,
            events=dm.event_kinds(list(route.events)),
        )
        return dm.route_to_proto(view)

    def GetBounceRoute(self, request: delivery_pb.GetBounceRouteRequest, context: grpc.ServicerContext) -> Any:
        return dm.route_to_proto(self._bounces.get_route(current_caller(), request.tenant_id, request.route_id))

    def ListBounceRoutes(self, request: delivery_pb.ListBounceRoutesRequest, context: grpc.ServicerContext) -> Any:
        views = self._bounces.list_routes(current_caller(), request.tenant_id)
        return delivery_pb.ListBounceRoutesResponse(bounce_routes=[dm.route_to_proto(v) for v in views])

    def DeleteBounceRoute(self, request: delivery_pb.DeleteBounceRouteRequest, context: grpc.ServicerContext) -> Any:
        self._bounces.delete_route(current_caller(), request.tenant_id, request.route_id)
        return empty_pb2.Empty()
