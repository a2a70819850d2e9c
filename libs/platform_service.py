"""PlatformService, served by every service process: product health and the audit log.

Both fan out to the four services over gRPC, so whichever process Envoy picks gives the whole picture.
"""

from __future__ import annotations

import heapq
import logging
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emailengine.platform.v1 import platform_service_pb2 as pb
from emailengine.platform.v1 import platform_service_pb2_grpc as pb_grpc
from libs import audit
from libs.config import SERVICE_NAMES, Settings
from libs.db import Database
from libs.errors import Unavailable
from libs.interceptor import current_authorization, current_caller
from libs.pagination import page_size
from libs.service_catalog import grpc_service_of

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 1.0

try:
    PRODUCT_VERSION = version("email-engine")
except PackageNotFoundError:
    PRODUCT_VERSION = "dev"


class PlatformServicer(pb_grpc.PlatformServiceServicer):
    def __init__(self, service: str, settings: Settings, db: Database):
        self._service = service
        self._settings = settings
        self._db = db
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
