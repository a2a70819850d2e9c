"""reputation's gRPC servicer: proto <-> use cases, nothing more (assembled in bootstrap.py).

Settings: reputation/config.py (EE_REPUTATION_*, EE_DNS_NAMESERVERS, EE_DNS_TIMEOUT). The periodic jobs are
`reputation.jobs.scan_watched_ips` (IPs; the IPs to watch come from ip-pool's events, app/watchlist.py) and
`reputation.jobs.check_tenant_domains` (each tenant's sending and tracking domains, app/tenant_domains.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from emailengine.reputation.v1 import reputation_service_pb2 as pb
from emailengine.reputation.v1 import reputation_service_pb2_grpc as pb_grpc
from libs.interceptor import current_caller
from reputation.app import protos

if TYPE_CHECKING:
    from reputation.bootstrap import ReputationApp


class ReputationServicer(pb_grpc.ReputationServiceServicer):
    def __init__(self, reputation: ReputationApp):
        self._rep = reputation

    def CheckIp(self, request: pb.CheckIpRequest, context: grpc.ServicerContext) -> pb.IpReputation:
        return self._rep.ips.check(current_caller(), request.address)

    def GetIpReputation(self, request: pb.GetIpReputationRequest, context: grpc.ServicerContext) -> pb.IpReputation:
        return self._rep.ips.get(current_caller(), request.address, request.history_size)

    def ScanTenant(self, request: pb.ScanTenantRequest, context: grpc.ServicerContext) -> pb.ScanTenantResponse:
        return self._rep.ips.scan_tenant(current_caller(), request.tenant_id)

    def ValidateDomain(self, request: pb.ValidateDomainRequest, context: grpc.ServicerContext) -> pb.DomainValidation:
        report = self._rep.domains.validate(
            current_caller(),
            domain=request.domain,
            ips=list(request.ips),
            dkim_selectors=list(request.dkim_selectors),
            helo_hostname=request.helo_hostname,
            tenant_id=request.tenant_id,
            tracking_domains=list(request.tracking_domains),
        )
        return pb.DomainValidation(
            domain=report.domain,
            verdict=protos.verdict(report.verdict),
            checks=[protos.domain_check(c) for c in report.checks],
            check_time=protos.timestamp(report.checked_at),
        )

    def ListZones(self, request: pb.ListZonesRequest, context: grpc.ServicerContext) -> pb.ListZonesResponse:
        current_caller()
        return self._rep.zones.list()

    def GetTenantZones(self, request: pb.GetTenantZonesRequest, context: grpc.ServicerContext) -> pb.TenantZones:
        return self._rep.zones.get_for_tenant(current_caller(), request.tenant_id)

    def SetTenantZones(self, request: pb.SetTenantZonesRequest, context: grpc.ServicerContext) -> pb.TenantZones:
        return self._rep.zones.set_for_tenant(
            current_caller(), request.tenant_id, list(request.ip_zones), list(request.domain_zones)
        )

    def GetTenantDomains(self, request: pb.GetTenantDomainsRequest, context: grpc.ServicerContext) -> pb.TenantDomains:
        return self._rep.tenant_domains.get(current_caller(), request.tenant_id)

    def SetTenantDomains(self, request: pb.SetTenantDomainsRequest, context: grpc.ServicerContext) -> pb.TenantDomains:
        return self._rep.tenant_domains.set(
            current_caller(),
            request.tenant_id,
            [(d.domain, list(d.dkim_selectors)) for d in request.sending_domains],
            list(request.tracking_domains),
        )

    def CheckTenantDomains(
        self, request: pb.CheckTenantDomainsRequest, context: grpc.ServicerContext
    ) -> pb.CheckTenantDomainsResponse:
        return self._rep.tenant_domains.check(current_caller(), request.tenant_id)
