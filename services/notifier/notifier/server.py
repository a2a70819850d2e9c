"""The notifier's gRPC servicer: proto <-> use cases, nothing more (assembled in bootstrap.py, mapping in
mapping.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2

from emailengine.notifier.v1 import notifier_service_pb2 as pb
from emailengine.notifier.v1 import notifier_service_pb2_grpc as pb_grpc
from libs.interceptor import current_caller
from notifier.mapping import (
    alert_to_proto,
    route_spec_from_proto,
    route_to_proto,
    settings_update_fields,
    severity_from_proto,
    tenant_settings_to_proto,
)

if TYPE_CHECKING:
    from notifier.bootstrap import Notifier


class NotifierServicer(pb_grpc.NotifierServiceServicer):
    def __init__(self, app: Notifier):
        self._alerts = app.alerts
        self._routes = app.routes
        self._tenants = app.tenants

    # -- alerts -----------------------------------------------------------------------------------

    def SendAlert(self, request: pb.SendAlertRequest, context: grpc.ServicerContext) -> pb.Alert:
        view = self._alerts.send(
            current_caller(),
            tenant_id=request.tenant_id,
            severity=severity_from_proto(request.severity),
            dedup_key=request.dedup_key,
            title=request.title,
            text=request.text,
            source=request.source,
            labels=dict(request.labels),
            url=request.url,
            resolved=request.resolved,
        )
        return alert_to_proto(view)

    def GetAlert(self, request: pb.GetAlertRequest, context: grpc.ServicerContext) -> pb.Alert:
        return alert_to_proto(self._alerts.get(current_caller(), request.alert_id))

    def ListAlerts(self, request: pb.ListAlertsRequest, context: grpc.ServicerContext) -> pb.ListAlertsResponse:
        views, token = self._alerts.list(current_caller(), request.tenant_id, request.page_size, request.page_token)
        return pb.ListAlertsResponse(alerts=[alert_to_proto(v) for v in views], next_page_token=token)

    def ReceiveAlertmanagerWebhook(
        self, request: httpbody_pb2.HttpBody, context: grpc.ServicerContext
    ) -> pb.ReceiveAlertmanagerWebhookResponse:
        receipt = self._alerts.receive_alertmanager(current_caller(), request.data)
        return pb.ReceiveAlertmanagerWebhookResponse(
            received=len(receipt.results),
            accepted=receipt.accepted,
            suppressed=receipt.suppressed,
            alert_ids=[r.alert_id for r in receipt.results],
        )

    # -- routes -----------------------------------------------------------------------------------

    def CreateRoute(self, request: pb.CreateRouteRequest, context: grpc.ServicerContext) -> pb.Route:
        return route_to_proto(self._routes.create(current_caller(), route_spec_from_proto(request)))

    def GetRoute(self, request: pb.GetRouteRequest, context: grpc.ServicerContext) -> pb.Route:
        return route_to_proto(self._routes.get(current_caller(), request.route_id))

    def ListRoutes(self, request: pb.ListRoutesRequest, context: grpc.ServicerContext) -> pb.ListRoutesResponse:
        found, token = self._routes.list(current_caller(), request.tenant_id, request.page_size, request.page_token)
        return pb.ListRoutesResponse(routes=[route_to_proto(r) for r in found], next_page_token=token)

    def DeleteRoute(self, request: pb.DeleteRouteRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
        self._routes.delete(current_caller(), request.route_id)
        return empty_pb2.Empty()

    # -- tenant settings --------------------------------------------------------------------------

    def GetTenantSettings(
        self, request: pb.GetTenantSettingsRequest, context: grpc.ServicerContext
    ) -> pb.TenantSettings:
        return tenant_settings_to_proto(self._tenants.get(current_caller(), request.tenant_id))

    def UpdateTenantSettings(
        self, request: pb.UpdateTenantSettingsRequest, context: grpc.ServicerContext
    ) -> pb.TenantSettings:
        settings_update_fields(request)  # the mask may name only the one field there is to set
        chats = list(request.settings.allowed_telegram_chat_ids)
        settings = self._tenants.set_allowed_chats(current_caller(), request.settings.tenant_id, chats)
        return tenant_settings_to_proto(settings)
