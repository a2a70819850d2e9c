"""reputation's gRPC servicer: request proto -> one use case -> response proto (assembled in bootstrap.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from emailengine.reputation.v1 import reputation_service_pb2 as pb
from emailengine.reputation.v1 import reputation_service_pb2_grpc as pb_grpc
from libs.interceptor import current_caller
from reputation import mapping
from reputation.app.scan_settings import SETTABLE

if TYPE_CHECKING:
    from reputation.bootstrap import ReputationApp


class ReputationServicer(pb_grpc.ReputationServiceServicer):
    def __init__(self, app: ReputationApp):
        self._app = app

    def CheckIp(self, request: pb.CheckIpRequest, context: grpc.ServicerContext) -> pb.IpReputation:
        return mapping.ip_reputation(self._app.ips.check(current_caller(), request.address))

    def GetIpReputation(self, request: pb.GetIpReputationRequest, context: grpc.ServicerContext) -> pb.IpReputation:
        return mapping.ip_reputation(self._app.ips.get(current_caller(), request.address, request.history_size))

    def ScanTenant(self, request: pb.ScanTenantRequest, context: grpc.ServicerContext) -> pb.ScanTenantResponse:
        return mapping.tenant_scan(self._app.ips.scan_tenant(current_caller(), request.tenant_id))

    def ValidateDomain(self, request: pb.ValidateDomainRequest, context: grpc.ServicerContext) -> pb.DomainValidation:
        report = self._app.domains.validate(
            current_caller(),
            domain=request.domain,
            ips=list(request.ips),
            dkim_selectors=list(request.dkim_selectors),
            helo_hostname=request.helo_hostname,
            tenant_id=request.tenant_id,
            tracking_domains=list(request.tracking_domains),
            return_path_domain=request.return_path_domain,
        )
        return mapping.domain_validation(report)

    def ListZones(self, request: pb.ListZonesRequest, context: grpc.ServicerContext) -> pb.ListZonesResponse:
        current_caller()
        return pb.ListZonesResponse(zones=[mapping.zone_status(z) for z in self._app.zones.list()])

    def GetTenantZones(self, request: pb.GetTenantZonesRequest, context: grpc.ServicerContext) -> pb.TenantZones:
        return mapping.tenant_zones(self._app.zones.get_for_tenant(current_caller(), request.tenant_id))

    def SetTenantZones(self, request: pb.SetTenantZonesRequest, context: grpc.ServicerContext) -> pb.TenantZones:
        chosen = self._app.zones.set_for_tenant(
            current_caller(), request.tenant_id, list(request.ip_zones), list(request.domain_zones)
        )
        return mapping.tenant_zones(chosen)

    def GetTenantDomains(self, request: pb.GetTenantDomainsRequest, context: grpc.ServicerContext) -> pb.TenantDomains:
        return mapping.tenant_domains(self._app.tenant_domains.get(current_caller(), request.tenant_id))

    def SetTenantDomains(self, request: pb.SetTenantDomainsRequest, context: grpc.ServicerContext) -> pb.TenantDomains:
        stored = self._app.tenant_domains.set(
            current_caller(),
            request.tenant_id,
            [(d.domain, list(d.dkim_selectors), d.return_path_domain) for d in request.sending_domains],
            list(request.tracking_domains),
            mapping.check_policy_values(request.check_policy),
        )
        return mapping.tenant_domains(stored)

    def CheckTenantDomains(
        self, request: pb.CheckTenantDomainsRequest, context: grpc.ServicerContext
    ) -> pb.CheckTenantDomainsResponse:
        run = self._app.tenant_domains.check(current_caller(), request.tenant_id)
        return mapping.tenant_domain_run(run)

    def GetTenantScanSettings(
        self, request: pb.GetTenantScanSettingsRequest, context: grpc.ServicerContext
    ) -> pb.TenantScanSettings:
        return mapping.tenant_scan_settings(self._app.scan_settings.get(current_caller(), request.tenant_id))

    def UpdateTenantScanSettings(
        self, request: pb.UpdateTenantScanSettingsRequest, context: grpc.ServicerContext
    ) -> pb.TenantScanSettings:
        settings = request.settings
        updated = self._app.scan_settings.update(
            current_caller(),
            settings.tenant_id,
            interval=mapping.scan_interval(settings),
            fields=list(request.update_mask.paths) or SETTABLE,
        )
        return mapping.tenant_scan_settings(updated)
