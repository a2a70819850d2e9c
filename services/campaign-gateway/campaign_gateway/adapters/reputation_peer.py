"""The campaign-gateway's view of reputation, over its gRPC contract: a tenant's sending domains with the latest
verdict of each check, a check run now, and what blocklists say about an IP.

Plain dataclasses out (the preflight's own, `domain/preflight.py`), so the use cases never see reputation's
protos. Calls go through `libs.service_client` for the tenant concerned, so reputation's tenant isolation holds.
"""

from __future__ import annotations

import grpc

from campaign_gateway.app.ports import TenantDomains
from campaign_gateway.domain.preflight import DomainCheck, IpListing, Verdict
from emailengine.reputation.v1 import reputation_service_pb2 as pb
from emailengine.reputation.v1 import reputation_service_pb2_grpc as pb_grpc
from libs.errors import Unavailable
from libs.service_client import ServiceClients

PEER = "reputation"
# CheckTenantDomains runs DNS checks of every domain now: it may take longer than a read.
CHECK_TIMEOUT_SECONDS = 60.0


class ReputationPeer:
    def __init__(self, clients: ServiceClients):
        self._clients = clients

    def _call(
        self, method: str, request: object, *, tenant: str, idempotent: bool = True, timeout: float | None = None
    ) -> object:
        try:
            return self._clients.call(
                PEER,
                pb_grpc.ReputationServiceStub,
                method,
                request,
                tenant_id=tenant,
                idempotent=idempotent,
                timeout=timeout,
            )
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(f"reputation did not answer ({exc.code().name}); try again shortly") from None
            raise

    def tenant_domains(self, tenant: str) -> TenantDomains:
        reply: pb.TenantDomains = self._call(  # type: ignore[assignment]
            "GetTenantDomains", pb.GetTenantDomainsRequest(tenant_id=tenant), tenant=tenant
        )
        return TenantDomains(
            sending_domains=tuple(d.domain for d in reply.sending_domains),
            tracking_domains=tuple(reply.tracking_domains),
            checks=tuple(_check(c) for c in reply.checks),
        )

    def check_tenant_domains(self, tenant: str) -> TenantDomains:
        """Runs the tenant's domain checks now (harmless to repeat, so retried), then reads what is believed."""
        self._call(
            "CheckTenantDomains",
            pb.CheckTenantDomainsRequest(tenant_id=tenant),
            tenant=tenant,
            timeout=CHECK_TIMEOUT_SECONDS,
        )
        return self.tenant_domains(tenant)

    def ip_listing(self, address: str, *, tenant: str) -> IpListing:
        try:
            reply: pb.IpReputation = self._call(  # type: ignore[assignment]
                "GetIpReputation", pb.GetIpReputationRequest(address=address, history_size=1), tenant=tenant
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return IpListing(address, listed=False, scanned=False)
            raise
        zones = tuple(z.zone for z in reply.current_listings if z.status == pb.LISTING_STATUS_LISTED)
        return IpListing(address, listed=reply.listed, zones=zones, scanned=reply.HasField("latest"))


def _check(found: pb.TenantDomainCheck) -> DomainCheck:
    verdict = pb.CheckVerdict.Name(found.result.verdict).removeprefix("CHECK_VERDICT_")
    return DomainCheck(
        domain=found.domain,
        role=found.domain_role,
        check=found.result.check,
        subject=found.result.subject,
        verdict=Verdict.UNCHECKED if verdict == "UNSPECIFIED" else Verdict(verdict),
        reason=found.result.reason,
    )
