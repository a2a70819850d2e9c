"""PlatformService, served by every service process: product health, the audit log and the dead letters.

Each fans out to the four services over gRPC, so whichever process Envoy picks gives the whole picture; a replay
is forwarded to the service whose dead letter it is.
"""

from __future__ import annotations

import heapq
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from importlib.metadata import PackageNotFoundError, version

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emailengine.platform.v1 import platform_service_pb2 as pb
from emailengine.platform.v1 import platform_service_pb2_grpc as pb_grpc
from libs import audit
from libs.config import SERVICE_NAMES, Settings
from libs.db import Database
from libs.dead_letters import DeadLetter, DeadLetters
from libs.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from libs.interceptor import current_authorization, current_caller
from libs.pagination import TimePosition, page_size
from libs.service_catalog import grpc_service_of

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 1.0

try:
    PRODUCT_VERSION = version("email-engine")
except PackageNotFoundError:
    PRODUCT_VERSION = "dev"


class PlatformServicer(pb_grpc.PlatformServiceServicer):
    def __init__(self, service: str, settings: Settings, db: Database, dead_letters: DeadLetters | None = None):
        self._service = service
        self._settings = settings
        self._db = db
        self._dead_letters = dead_letters
        self._channels = {name: grpc.insecure_channel(settings.grpc_address(name)) for name in SERVICE_NAMES}
        self._pool = ThreadPoolExecutor(max_workers=len(SERVICE_NAMES), thread_name_prefix="fanout")

    def GetHealth(self, request: pb.GetHealthRequest, context: grpc.ServicerContext) -> pb.GetHealthResponse:
        results = list(self._pool.map(self._check, SERVICE_NAMES))
        overall = "SERVING" if all(r.status == "SERVING" for r in results) else "DEGRADED"
        return pb.GetHealthResponse(status=overall, services=results, version=PRODUCT_VERSION)

    def _check(self, name: str) -> pb.ServiceHealth:
        stub = health_pb2_grpc.HealthStub(self._channels[name])
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=grpc_service_of(name)), timeout=HEALTH_TIMEOUT_SECONDS
            )
        except grpc.RpcError as exc:
            # The public answer says only that the service did not answer; the peer's text (addresses) is logged.
            log.warning("health check failed", extra={"service": name, "error": f"{exc.code().name}: {exc.details()}"})
            return pb.ServiceHealth(service=name, status="UNKNOWN", detail=exc.code().name)
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return pb.ServiceHealth(service=name, status=status)

    def ListAuditEntries(
        self, request: pb.ListAuditEntriesRequest, context: grpc.ServicerContext
    ) -> pb.ListAuditEntriesResponse:
        current_caller().require_admin()
        size = page_size(request.page_size)
        metadata = (("authorization", current_authorization()),)
        per_service = pb.ListAuditEntriesRequest(
            tenant_id=request.tenant_id, page_size=size, page_token=request.page_token
        )

        def fetch(name: str) -> list[pb.AuditEntry]:
            stub = pb_grpc.PlatformServiceStub(self._channels[name])
            try:
                return list(stub.ListServiceAuditEntries(per_service, metadata=metadata, timeout=5).audit_entries)
            except grpc.RpcError as exc:
                raise Unavailable(f"audit log of {name} unavailable: {exc.code().name}") from None

        streams = list(self._pool.map(fetch, SERVICE_NAMES))
        merged = heapq.merge(*streams, key=lambda e: (e.time.ToNanoseconds(), e.id), reverse=True)
        page = [entry for _, entry in zip(range(size), merged, strict=False)]
        token = audit.position_of(page[-1]) if len(page) == size else ""
        return pb.ListAuditEntriesResponse(audit_entries=page, next_page_token=token)

    def ListServiceAuditEntries(
        self, request: pb.ListAuditEntriesRequest, context: grpc.ServicerContext
    ) -> pb.ListAuditEntriesResponse:
        current_caller().require_admin()
        entries = audit.list_entries(
            self._db, tenant_id=request.tenant_id, limit=page_size(request.page_size), page_token=request.page_token
        )
        return pb.ListAuditEntriesResponse(audit_entries=entries)

    # -- dead letters -------------------------------------------------------------------------------------

    def ListDeadLetters(
        self, request: pb.ListDeadLettersRequest, context: grpc.ServicerContext
    ) -> pb.ListDeadLettersResponse:
        current_caller().require_admin()
        size = page_size(request.page_size)
        services = [_known_service(request.service)] if request.service else list(SERVICE_NAMES)
        metadata = (("authorization", current_authorization()),)
        per_service = pb.ListDeadLettersRequest(
            include_replayed=request.include_replayed, page_size=size, page_token=request.page_token
        )

        def fetch(name: str) -> list[pb.DeadLetter]:
            stub = pb_grpc.PlatformServiceStub(self._channels[name])
            try:
                return list(stub.ListServiceDeadLetters(per_service, metadata=metadata, timeout=5).dead_letters)
            except grpc.RpcError as exc:
                raise Unavailable(f"dead letters of {name} unavailable: {exc.code().name}") from None

        streams = list(self._pool.map(fetch, services))
        merged = heapq.merge(*streams, key=lambda d: (d.failed_at.ToNanoseconds(), d.event_id), reverse=True)
        page = [letter for _, letter in zip(range(size), merged, strict=False)]
        token = _position_of(page[-1]).encode() if len(page) == size else ""
        return pb.ListDeadLettersResponse(dead_letters=page, next_page_token=token)

    def ListServiceDeadLetters(
        self, request: pb.ListDeadLettersRequest, context: grpc.ServicerContext
    ) -> pb.ListDeadLettersResponse:
        current_caller().require_admin()
        if self._dead_letters is None:
            return pb.ListDeadLettersResponse()
        found = self._dead_letters.list(
            include_replayed=request.include_replayed,
            limit=page_size(request.page_size),
            after=TimePosition.decode(request.page_token),
        )
        return pb.ListDeadLettersResponse(dead_letters=[_letter(d) for d in found])

    def ReplayDeadLetter(self, request: pb.ReplayDeadLetterRequest, context: grpc.ServicerContext) -> pb.DeadLetter:
        current_caller().require_admin()
        owner = _known_service(request.service)
        stub = pb_grpc.PlatformServiceStub(self._channels[owner])
        metadata = (("authorization", current_authorization()),)
        try:
            return stub.ReplayServiceDeadLetter(request, metadata=metadata, timeout=60)
        except grpc.RpcError as exc:
            status = exc.code()
            if status in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                error = NotFound("dead letter", request.event_id) if status == grpc.StatusCode.NOT_FOUND else None
                raise error or FailedPrecondition(exc.details() or "the event failed again") from None
            raise Unavailable(f"{owner} did not answer the replay: {status.name}") from None

    def ReplayServiceDeadLetter(
        self, request: pb.ReplayDeadLetterRequest, context: grpc.ServicerContext
    ) -> pb.DeadLetter:
        current_caller().require_admin()
        if self._dead_letters is None or request.service != self._service:
            raise NotFound("dead letter", request.event_id)
        audit.note(resource=f"dead-letters/{request.service}/{request.event_id}")
        return _letter(self._dead_letters.replay(request.event_id))


def _known_service(name: str) -> str:
    if name not in SERVICE_NAMES:
        raise InvalidArgument("service", f"must be one of {', '.join(SERVICE_NAMES)}")
    return name


def _position_of(letter: pb.DeadLetter) -> TimePosition:
    return TimePosition(letter.failed_at.ToDatetime(tzinfo=UTC), letter.event_id)


def _letter(letter: DeadLetter) -> pb.DeadLetter:
    message = pb.DeadLetter(
        service=letter.service,
        event_id=letter.event_id,
        event_type=letter.event_type,
        source=letter.source,
        tenant_id=letter.tenant_id,
        error=letter.error,
        attempts=letter.attempts,
    )
    message.failed_at.FromDatetime(letter.failed_at)
    if letter.occurred_at is not None:
        message.occurred_at.FromDatetime(letter.occurred_at)
    if letter.replayed_at is not None:
        message.replayed_at.FromDatetime(letter.replayed_at)
    return message
