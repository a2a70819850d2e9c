"""Proto <-> use-case values for the notifier's servicer."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from emailengine.notifier.v1 import notifier_service_pb2 as pb
from libs.errors import InvalidArgument
from libs.outbound import origin_of
from notifier.app.alerts import AlertView, DeliveryView
from notifier.app.routes import RouteSpec
from notifier.domain.alert import Severity
from notifier.domain.outbox import StoredRoute
from notifier.domain.routing import Channel, QuietMode, TenantSettings

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
_SETTINGS_FIELDS = frozenset({"allowed_telegram_chat_ids"})


def _ts(target: Timestamp, value: datetime | None) -> None:
    if value is not None:
        target.FromDatetime(value)


def severity_to_proto(severity: Severity) -> int:
    return pb.AlertSeverity.Value(f"ALERT_SEVERITY_{severity.name}")


def severity_from_proto(value: int) -> Severity | None:
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
    alert = view.alert
    message = pb.Alert(
        alert_id=view.alert_id,
        tenant_id=alert.tenant,
        severity=severity_to_proto(alert.severity),
        dedup_key=alert.dedup_key,
        title=alert.title,
        text=alert.text,
        source=alert.source,
        delivery_state=_state_to_proto(view.state),
        attempts=view.attempts,
        last_error=view.last_error,
        labels=dict(alert.labels),
        resolved=alert.resolved,
        url=alert.url,
        suppressed_count=view.suppressed_count,
        duplicate_of=view.duplicate_of,
        deliveries=[delivery_to_proto(d) for d in view.deliveries],
    )
    _ts(message.create_time, view.create_time)
    _ts(message.delivery_time, view.delivery_time)
    _ts(message.occur_time, alert.occurred_at)
    return message


def route_to_proto(stored: StoredRoute) -> pb.Route:
    """Never the webhook URL's path or query, never the secret."""
    message = pb.Route(
        route_id=stored.route_id,
        tenant_id=stored.tenant or "",
        admin=stored.is_admin,
        channel=_CHANNEL_TO_PROTO.get(stored.channel, pb.ROUTE_CHANNEL_UNSPECIFIED),
        has_webhook_secret=bool(stored.secret),
        problem=stored.problem,
    )
    if stored.channel == Channel.TELEGRAM.value:
        message.telegram_chat_id = stored.target
    else:
        message.webhook_origin = origin_of(stored.target)
    route = stored.route
    if route is not None:
        message.min_severity = severity_to_proto(route.min_severity)
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
    _ts(message.create_time, stored.create_time)
    return message


def route_spec_from_proto(request: pb.CreateRouteRequest) -> RouteSpec:
    channel = _CHANNEL_FROM_PROTO.get(request.channel, "")
    if not channel and request.channel == pb.ROUTE_CHANNEL_UNSPECIFIED:  # inferred from the target given
        channel = "telegram" if request.telegram_chat_id else "webhook" if request.webhook_url else ""
    severity = severity_from_proto(request.min_severity) or Severity.INFO
    quiet = request.quiet_hours if request.HasField("quiet_hours") else pb.QuietHours()
    return RouteSpec(
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


def tenant_settings_to_proto(settings: TenantSettings) -> pb.TenantSettings:
    message = pb.TenantSettings(
        tenant_id=settings.tenant, allowed_telegram_chat_ids=sorted(settings.allowed_telegram_chats)
    )
    _ts(message.update_time, settings.update_time)
    return message


def settings_update_fields(request: pb.UpdateTenantSettingsRequest) -> frozenset[str]:
    """The fields an update changes (all of them for an empty mask); a path this resource lacks is refused."""
    paths = frozenset(request.update_mask.paths)
    unknown = sorted(paths - _SETTINGS_FIELDS)
    if unknown:
        raise InvalidArgument("update_mask", f"unknown field {unknown[0]!r}; known: allowed_telegram_chat_ids")
    return paths or _SETTINGS_FIELDS
