"""notifier service entry point: the gRPC servicer and the wiring of its use cases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import grpc
import sqlalchemy as sa

from emailengine.notifier.v1 import notifier_service_pb2 as pb
from emailengine.notifier.v1 import notifier_service_pb2_grpc as pb_grpc
from libs import audit
from libs.db import Database
from libs.errors import InvalidArgument, NotFound, Violations
from libs.interceptor import current_caller
from libs.pagination import decode_token, encode_token, page_size
from libs.server import Runtime, ServiceDefinition
from notifier.adapters.tables import alerts


def alert_to_proto(row: sa.Row) -> pb.Alert:
    message = pb.Alert(
        alert_id=row.alert_id,
        tenant_id=row.tenant_id,
        severity=pb.AlertSeverity.Value(f"ALERT_SEVERITY_{row.severity}"),
        dedup_key=row.dedup_key,
        title=row.title,
        text=row.text,
        source=row.source,
        delivery_state=pb.DeliveryState.Value(f"DELIVERY_STATE_{row.delivery_state}"),
        attempts=row.attempts,
        last_error=row.last_error,
    )
    message.create_time.FromDatetime(row.create_time)
    if row.delivery_time:
        message.delivery_time.FromDatetime(row.delivery_time)
    return message


class NotifierServicer(pb_grpc.NotifierServiceServicer):
    def __init__(self, db: Database):
        self._db = db

    def SendAlert(self, request: pb.SendAlertRequest, context: grpc.ServicerContext) -> pb.Alert:
        v = Violations()
        if not request.tenant_id:
            v.add("tenant_id", "is required")
        if request.severity == pb.ALERT_SEVERITY_UNSPECIFIED:
            v.add("severity", "must be ALERT_SEVERITY_INFO, ALERT_SEVERITY_WARNING or ALERT_SEVERITY_CRITICAL")
        if not request.text.strip():
            v.add("text", "is required")
        v.raise_if_any()
        current_caller().require_write(request.tenant_id)
        alert_id = str(uuid.uuid4())
        audit.note(resource=f"alerts/{alert_id}")
        with self._db.transaction() as session:
            session.execute(
                alerts.insert().values(
                    alert_id=alert_id,
                    tenant_id=request.tenant_id,
                    severity=pb.AlertSeverity.Name(request.severity).removeprefix("ALERT_SEVERITY_"),
                    dedup_key=request.dedup_key or alert_id,
                    title=request.title,
                    text=request.text,
                    source=request.source or "api",
                    delivery_state="PENDING",
                    create_time=datetime.now(UTC),
                    attempts=0,
                    last_error="",
                )
            )
            row = session.execute(sa.select(alerts).where(alerts.c.alert_id == alert_id)).one()
        return alert_to_proto(row)

    def GetAlert(self, request: pb.GetAlertRequest, context: grpc.ServicerContext) -> pb.Alert:
        with self._db.transaction() as session:
            row = session.execute(sa.select(alerts).where(alerts.c.alert_id == request.alert_id)).first()
        if row is None:
            raise NotFound("alert", request.alert_id)
        current_caller().require_read(row.tenant_id)
        return alert_to_proto(row)

    def ListAlerts(self, request: pb.ListAlertsRequest, context: grpc.ServicerContext) -> pb.ListAlertsResponse:
        tenant = current_caller().visible_tenant(request.tenant_id)
        limit = page_size(request.page_size)
        query = sa.select(alerts).order_by(alerts.c.create_time.desc(), alerts.c.alert_id.desc()).limit(limit + 1)
        if tenant:
            query = query.where(alerts.c.tenant_id == tenant)
        position = decode_token(request.page_token)
        if position:
            try:
                after = datetime.fromisoformat(str(position["t"]))
            except (KeyError, ValueError):
                raise InvalidArgument("page_token", "is not a token this API returned") from None
            query = query.where(
                sa.or_(
                    alerts.c.create_time < after,
                    sa.and_(alerts.c.create_time == after, alerts.c.alert_id < str(position.get("i", ""))),
                )
            )
        with self._db.transaction() as session:
            rows = session.execute(query).all()
        page = rows[:limit]
        token = ""
        if len(rows) > limit:
            last = page[-1]
            token = encode_token({"t": last.create_time.isoformat(), "i": last.alert_id})
        return pb.ListAlertsResponse(alerts=[alert_to_proto(r) for r in page], next_page_token=token)


def wire(rt: Runtime) -> None:
    pb_grpc.add_NotifierServiceServicer_to_server(NotifierServicer(rt.db), rt.grpc_server)


DEFINITION = ServiceDefinition(
    name="notifier",
    migrations=Path(__file__).parent / "adapters" / "migrations",
    wire=wire,
)
