"""ip-pool's gRPC servicer: proto <-> use cases, nothing more (mapping in mapping.py, assembly in bootstrap.py).

Run alone with `emailengine serve ip-pool`; `emailengine run` runs it beside the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from emailengine.ippool.v1 import ippool_service_pb2_grpc as pb_grpc
from ippool.app.schedules import StepInput
from ippool.app.signals import StatsInput
from ippool.mapping import (
    allocation_to_proto,
    counts_from_proto,
    decision_to_proto,
    ip_to_proto,
    kind_from_proto,
    provider_from_proto,
    purpose_from_proto,
    schedule_to_proto,
    severity_from_proto,
    state_from_proto,
    tenant_changes,
    tenant_to_proto,
)
from libs.current_cache import MappedOnce
from libs.interceptor import current_caller

if TYPE_CHECKING:
    from ippool.bootstrap import IpPoolApp


class IpPoolServicer(pb_grpc.IpPoolServiceServicer):
    def __init__(self, app: IpPoolApp):
        self._ips = app.ips
        self._tenants = app.tenants
        self._schedules = app.schedules
        self._signals = app.signals
        self._allocations = app.allocations
        # GetIp's answers come from the use case's cache while nothing changed: mapped once each.
        self._read_ip = MappedOnce(ip_to_proto)

    def CreateIp(self, request: pb.CreateIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(
            self._ips.register(
                current_caller(),
                address=request.address,
                tenant_id=request.tenant_id,
                purpose=request.purpose,
                pool=request.pool,
                pmta_node=request.pmta_node,
                helo_hostname=request.helo_hostname,
                schedule_id=request.schedule_id,
            )
        )

    def GetIp(self, request: pb.GetIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return self._read_ip(self._ips.get(current_caller(), request.address))

    def ListIps(self, request: pb.ListIpsRequest, context: grpc.ServicerContext) -> pb.ListIpsResponse:
        found, token = self._ips.list(
            current_caller(),
            tenant_id=request.tenant_id,
            state=state_from_proto(request.state),
            size=request.page_size,
            token=request.page_token,
        )
        return pb.ListIpsResponse(ips=[ip_to_proto(ip) for ip in found], next_page_token=token)

    def PauseIp(self, request: pb.PauseIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(self._ips.pause(current_caller(), request.address, request.reason))

    def ResumeIp(self, request: pb.ResumeIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(self._ips.resume(current_caller(), request.address, request.reason))

    def RetireIp(self, request: pb.RetireIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(self._ips.retire(current_caller(), request.address, request.reason))

    def ReleaseIp(self, request: pb.ReleaseIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(self._ips.release(current_caller(), request.address, request.reason))

    def TransferIp(self, request: pb.TransferIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(
            self._ips.transfer(current_caller(), request.address, tenant_id=request.tenant_id, reason=request.reason)
        )

    def ListIpDecisions(
        self, request: pb.ListIpDecisionsRequest, context: grpc.ServicerContext
    ) -> pb.ListIpDecisionsResponse:
        found, token = self._ips.decisions(
            current_caller(),
            request.address,
            kind=kind_from_proto(request.kind),
            size=request.page_size,
            token=request.page_token,
        )
        return pb.ListIpDecisionsResponse(decisions=[decision_to_proto(d) for d in found], next_page_token=token)

    def RecordDeliveryStats(
        self, request: pb.RecordDeliveryStatsRequest, context: grpc.ServicerContext
    ) -> pb.RecordDeliveryStatsResponse:
        entries = [
            StatsInput(s.address, s.day, provider_from_proto(s.provider, f"stats[{i}].provider"), counts_from_proto(s))
            for i, s in enumerate(request.stats)
        ]
        return pb.RecordDeliveryStatsResponse(recorded=self._signals.record_stats(current_caller(), entries))

    def RecordListing(self, request: pb.RecordListingRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(
            self._signals.record_listing(
                current_caller(),
                address=request.address,
                zone=request.zone,
                listed=request.listed,
                reason=request.reason,
                severity=severity_from_proto(request.severity),
            )
        )

    def AllocateVolume(self, request: pb.AllocateVolumeRequest, context: grpc.ServicerContext) -> pb.Allocation:
        return allocation_to_proto(
            self._allocations.allocate(
                current_caller(),
                tenant_id=request.tenant_id,
                volume=request.volume,
                volume_by_provider=[
                    (provider_from_proto(v.provider, f"volume_by_provider[{i}].provider"), v.volume)
                    for i, v in enumerate(request.volume_by_provider)
                ],
                plan_horizon_days=request.plan_horizon_days if request.HasField("plan_horizon_days") else None,
                validate_only=request.validate_only,
                purpose=purpose_from_proto(request.purpose),
                pool=request.pool,
            )
        )

    def CreateTenant(self, request: pb.CreateTenantRequest, context: grpc.ServicerContext) -> pb.Tenant:
        changes = tenant_changes(request.tenant, [])
        return tenant_to_proto(self._tenants.create(current_caller(), request.tenant.tenant_id, changes))

    def GetTenant(self, request: pb.GetTenantRequest, context: grpc.ServicerContext) -> pb.Tenant:
        return tenant_to_proto(self._tenants.get(current_caller(), request.tenant_id))

    def ListTenants(self, request: pb.ListTenantsRequest, context: grpc.ServicerContext) -> pb.ListTenantsResponse:
        found, token = self._tenants.list(current_caller(), request.page_size, request.page_token)
        return pb.ListTenantsResponse(tenants=[tenant_to_proto(t) for t in found], next_page_token=token)

    def UpdateTenant(self, request: pb.UpdateTenantRequest, context: grpc.ServicerContext) -> pb.Tenant:
        changes = tenant_changes(request.tenant, list(request.update_mask.paths))
        return tenant_to_proto(self._tenants.update(current_caller(), request.tenant.tenant_id, changes))

    def CreateSchedule(self, request: pb.CreateScheduleRequest, context: grpc.ServicerContext) -> pb.Schedule:
        schedule = request.schedule
        return schedule_to_proto(
            self._schedules.create(
                current_caller(),
                tenant_id=request.tenant_id,
                schedule_id=schedule.schedule_id,
                display_name=schedule.display_name,
                steps=[StepInput(s.daily_volume, s.sending_days) for s in schedule.steps],
            )
        )

    def GetSchedule(self, request: pb.GetScheduleRequest, context: grpc.ServicerContext) -> pb.Schedule:
        return schedule_to_proto(self._schedules.get(current_caller(), request.tenant_id, request.schedule_id))

    def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: grpc.ServicerContext
    ) -> pb.ListSchedulesResponse:
        found, token = self._schedules.list(current_caller(), request.tenant_id, request.page_size, request.page_token)
        return pb.ListSchedulesResponse(schedules=[schedule_to_proto(s) for s in found], next_page_token=token)
