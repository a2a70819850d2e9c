"""notifier service entry point: the gRPC servicer and the wiring of its use cases.

What it wires: the NotifierService servicer (alerts, the Alertmanager receiver, routes), the event handlers
(reputation IpListingChanged, ip-pool IpStateChanged) and the delivery loop or job (see app/service.py).
Settings: app/settings.py (EE_NOTIFIER_*) and EE_TELEGRAM_BOT_TOKEN / EE_TELEGRAM_API_BASE /
EE_TELEGRAM_TIMEOUT_SECONDS (Telegram is disabled unless the token is set).
"""

from __future__ import annotations

from datetime import datetime

import grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2

from emailengine.notifier.v1 import notifier_service_pb2 as pb
from emailengine.notifier.v1 import notifier_service_pb2_grpc as pb_grpc
from libs import audit
from libs.interceptor import current_caller
from notifier.adapters.webhook import safe_origin
from notifier.app.alerts import AlertView, DeliveryView
from notifier.app.records import RouteRecord
from notifier.app.routes import RouteSpec
from notifier.app.service import Notifier
from notifier.domain.alert import Severity
from notifier.domain.routing import Channel, QuietMode

_CHANNEL_TO_PROTO = {
    Channel.TELEGRAM.value: pb.ROUTE_CHANNEL_TELEGRAM,
    Channel.WEBHOOK.value: pb.ROUTE_CHANNEL_WEBHOOK,
}
_CHANNEL_FROM_PROTO = {
    pb.ROUTE_CHANNEL_TELEGRAM: Channel.TELEGRAM.value,
    pb.ROUTE_CHANNEL_WEBHOOK: Channel.WEBHOOK.value,
    pb.ROUTE_CHANNEL_UNSPECIFIED: "",
}
_QUIET_FROM_PROTO = {
    pb.QUIET_MODE_UNSPECIFIED: "",
    pb.QUIET_MODE_DEFER: QuietMode.DEFER.value,
    pb.QUIET_MODE_SILENT: QuietMode.SILENT.value,
}
_QUIET_TO_PROTO = {QuietMode.DEFER: pb.QUIET_MODE_DEFER, QuietMode.SILENT: pb.QUIET_MODE_SILENT}


def _ts(target: object, value: datetime | None) -> None:
    if value is not None:
        target.FromDatetime(value)  # type: ignore[attr-defined]


def _severity_to_proto(severity: Severity) -> int:
    return pb.AlertSeverity.Value(f"ALERT_SEVERITY_{severity.name}")


def _severity_from_proto(value: int) -> Severity | None:
    if value == pb.ALERT_SEVERITY_UNSPECIFIED:
        return None
    try:
        return Severity[pb.AlertSeverity.Name(value).removeprefix("ALERT_SEVERITY_")]
    except (ValueError, KeyError):
        return None


def _state_to_proto(state: str) -> int:
    try:
        return pb.DeliveryState.Value(f"DELIVERY_STATE_{state}")
    except ValueError:
        return pb.DELIVERY_STATE_UNSPECIFIED


def delivery_to_proto(view: DeliveryView) -> pb.AlertDelivery:
    message = pb.AlertDelivery(
        route_id=view.route_id,
        channel=_CHANNEL_TO_PROTO.get(view.channel, pb.ROUTE_CHANNEL_UNSPECIFIED),
        destination=view.destination,
        state=_state_to_proto(view.state),
        attempts=view.attempts,
        last_error=view.last_error,
        silent=view.silent,
        digest=view.digest,
    )
    _ts(message.deliver_after, view.deliver_at)
    _ts(message.next_attempt_time, view.next_attempt_at)
    _ts(message.delivery_time, view.delivered_at)
    return message


def alert_to_proto(view: AlertView) -> pb.Alert:
    message = pb.Alert(
        alert_id=view.alert_id,
        tenant_id=view.tenant_id,
        severity=_severity_to_proto(view.severity),
        dedup_key=view.dedup_key,
        title=view.title,
        text=view.text,
        source=view.source,
        delivery_state=_state_to_proto(view.state),
        attempts=view.attempts,
        last_error=view.last_error,
        labels=dict(view.labels),
        resolved=view.resolved,
        url=view.url,
        suppressed_count=view.suppressed_count,
        duplicate_of=view.duplicate_of,
        deliveries=[delivery_to_proto(d) for d in view.deliveries],
    )
    _ts(message.create_time, view.create_time)
    _ts(message.delivery_time, view.delivery_time)
    _ts(message.occur_time, view.occurred_at)
    return message


def route_to_proto(record: RouteRecord) -> pb.Route:
    """Never the webhook URL's path or query, never the secret."""
    route = record.route
    message = pb.Route(
        route_id=route.route_id,
        tenant_id=route.tenant or "",
        admin=route.is_admin,
        channel=_CHANNEL_TO_PROTO[route.channel.value],
        min_severity=_severity_to_proto(route.min_severity),
        has_webhook_secret=bool(record.secret),
    )
    if route.channel is Channel.TELEGRAM:
        message.telegram_chat_id = str(route.target)
    else:
        message.webhook_origin = safe_origin(route.target)
    if route.quiet_hours is not None:
        quiet = route.quiet_hours
        message.quiet_hours.CopyFrom(
            pb.QuietHours(
                start=quiet.start.strftime("%H:%M"),
                end=quiet.end.strftime("%H:%M"),
                time_zone=quiet.time_zone,
                mode=_QUIET_TO_PROTO[route.quiet_mode],
            )
        )
    _ts(message.create_time, record.create_time)
    return message


class NotifierServicer(pb_grpc.NotifierServiceServicer):
    def __init__(self, notifier: Notifier):
        self._n = notifier

    # -- alerts -----------------------------------------------------------------------------------

    def SendAlert(self, request: pb.SendAlertRequest, context: grpc.ServicerContext) -> pb.Alert:
        view = self._n.alerts.send(
            current_caller(),
            tenant_id=request.tenant_id,
            severity=_severity_from_proto(request.severity),
            dedup_key=request.dedup_key,
            title=request.title,
            text=request.text,
            source=request.source,
            labels=dict(request.labels),
            url=request.url,
            resolved=request.resolved,
        )
        audit.note(resource=f"alerts/{view.alert_id}", tenant_id=view.tenant_id)
        return alert_to_proto(view)

    def GetAlert(self, request: pb.GetAlertRequest, context: grpc.ServicerContext) -> pb.Alert:
        return alert_to_proto(self._n.alerts.get(current_caller(), request.alert_id))

    def ListAlerts(self, request: pb.ListAlertsRequest, context: grpc.ServicerContext) -> pb.ListAlertsResponse:
        views, token = self._n.alerts.list(current_caller(), request.tenant_id, request.page_size, request.page_token)
        return pb.ListAlertsResponse(alerts=[alert_to_proto(v) for v in views], next_page_token=token)

    def ReceiveAlertmanagerWebhook(
        self, request: httpbody_pb2.HttpBody, context: grpc.ServicerContext
    ) -> pb.ReceiveAlertmanagerWebhookResponse:
        receipt = self._n.alerts.receive_alertmanager(current_caller(), request.data)
        audit.note(resource=f"alertmanager/{len(receipt.results)} alerts")
        return pb.ReceiveAlertmanagerWebhookResponse(
            received=len(receipt.results),
            accepted=receipt.accepted,
            suppressed=receipt.suppressed,
            alert_ids=[r.alert_id for r in receipt.results],
        )

    # -- routes -----------------------------------------------------------------------------------

    def CreateRoute(self, request: pb.CreateRouteRequest, context: grpc.ServicerContext) -> pb.Route:
        channel = _CHANNEL_FROM_PROTO.get(request.channel, "")
        if not channel and request.channel == pb.ROUTE_CHANNEL_UNSPECIFIED:  # inferred from the target given
            channel = "telegram" if request.telegram_chat_id else "webhook" if request.webhook_url else ""
        severity = _severity_from_proto(request.min_severity) or Severity.INFO
        quiet = request.quiet_hours if request.HasField("quiet_hours") else pb.QuietHours()
        spec = RouteSpec(
            route_id=request.route_id,
            tenant_id=request.tenant_id,
            admin=request.admin,
            channel=channel,
            telegram_chat_id=request.telegram_chat_id.strip(),
            webhook_url=request.webhook_url.strip(),
            webhook_secret=request.webhook_secret,
            min_severity=severity.label,
            quiet_start=quiet.start,
            quiet_end=quiet.end,
            quiet_time_zone=quiet.time_zone,
            quiet_mode=_QUIET_FROM_PROTO.get(quiet.mode, ""),
        )
        record = self._n.routes.create(current_caller(), spec)
        audit.note(resource=f"alert-routes/{record.route.route_id}", tenant_id=record.route.tenant or "")
        return route_to_proto(record)

    def GetRoute(self, request: pb.GetRouteRequest, context: grpc.ServicerContext) -> pb.Route:
        return route_to_proto(self._n.routes.get(current_caller(), request.route_id))

    def ListRoutes(self, request: pb.ListRoutesRequest, context: grpc.ServicerContext) -> pb.ListRoutesResponse:
        records, token = self._n.routes.list(current_caller(), request.tenant_id, request.page_size, request.page_token)
        return pb.ListRoutesResponse(routes=[route_to_proto(r) for r in records], next_page_token=token)

    def DeleteRoute(self, request: pb.DeleteRouteRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
        audit.note(resource=f"alert-routes/{request.route_id}")
        self._n.routes.delete(current_caller(), request.route_id)
        return empty_pb2.Empty()
