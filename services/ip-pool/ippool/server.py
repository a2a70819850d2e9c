"""ip-pool service entry point: the gRPC servicer and the wiring of its use cases.

Run alone with `emailengine serve ip-pool`; `emailengine run` runs it beside the others.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from emailengine.ippool.v1 import ippool_service_pb2_grpc as pb_grpc
from ippool.app.ips import IpRecord, IpUseCases
from ippool.app.tenants import Tenant, TenantUseCases
from libs.config import load
from libs.interceptor import current_caller
from libs.server import Runtime, ServiceDefinition

# Until the warmup domain is wired: the brief's default schedule, one step a week.
_DEFAULT_DAILY = (50, 200, 500, 1500, 5000, 10000)


class IpPoolSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EE_IPPOOL_", extra="ignore")

    seed_tenants: str = Field(
        default="", description="Comma-separated tenant ids created at start-up if missing (e.g. sos-expat,ulixai)"
    )


def _ts(target: object, value: object) -> None:
    target.FromDatetime(value)  # type: ignore[attr-defined]


def ip_to_proto(record: IpRecord) -> pb.Ip:
    message = pb.Ip(
        address=record.address,
        tenant_id=record.tenant_id,
        purpose=record.purpose,
        pool=record.pool,
        pmta_node=record.pmta_node,
        helo_hostname=record.helo_hostname,
        state=pb.IpState.Value(f"IP_STATE_{record.state}"),
        state_reason=record.state_reason,
        warmup=pb.WarmupPosition(
            schedule_id=record.schedule_id,
            step_index=record.step_index,
            step_sending_days=record.step_sending_days,
            sending_day=record.sending_day,
        ),
    )
    daily = 0 if record.state in ("STANDBY", "PAUSED", "RETIRED") else _DEFAULT_DAILY[min(record.step_index, 5)]
    message.quota.daily = daily
    message.quota.remaining_today = daily
    _ts(message.create_time, record.create_time)
    _ts(message.update_time, record.update_time)
    return message


def tenant_to_proto(tenant: Tenant) -> pb.Tenant:
    message = pb.Tenant(
        tenant_id=tenant.tenant_id,
        display_name=tenant.display_name,
        time_zone=tenant.time_zone,
        sending_window_start_hour=tenant.sending_window_start_hour,
        sending_window_end_hour=tenant.sending_window_end_hour,
    )
    if tenant.create_time:
        _ts(message.create_time, tenant.create_time)
    return message


def tenant_from_proto(message: pb.Tenant) -> Tenant:
    return Tenant(
        tenant_id=message.tenant_id,
        display_name=message.display_name,
        time_zone=message.time_zone or "UTC",
        sending_window_start_hour=message.sending_window_start_hour,
        sending_window_end_hour=message.sending_window_end_hour or 24,
    )


class IpPoolServicer(pb_grpc.IpPoolServiceServicer):
    def __init__(self, ips: IpUseCases, tenants: TenantUseCases):
        self._ips = ips
        self._tenants = tenants

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
        return ip_to_proto(self._ips.get(current_caller(), request.address))

    def ListIps(self, request: pb.ListIpsRequest, context: grpc.ServicerContext) -> pb.ListIpsResponse:
        state = pb.IpState.Name(request.state).removeprefix("IP_STATE_") if request.state else ""
        found, token = self._ips.list(
            current_caller(), tenant_id=request.tenant_id, state=state, size=request.page_size, token=request.page_token
        )
        return pb.ListIpsResponse(ips=[ip_to_proto(r) for r in found], next_page_token=token)

    def PauseIp(self, request: pb.PauseIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(self._ips.change_state(current_caller(), request.address, "PAUSED", request.reason))

    def ResumeIp(self, request: pb.ResumeIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(self._ips.change_state(current_caller(), request.address, "RESUME", request.reason))

    def RetireIp(self, request: pb.RetireIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(self._ips.change_state(current_caller(), request.address, "RETIRED", request.reason))

    def CreateTenant(self, request: pb.CreateTenantRequest, context: grpc.ServicerContext) -> pb.Tenant:
        return tenant_to_proto(self._tenants.create(current_caller(), tenant_from_proto(request.tenant)))

    def GetTenant(self, request: pb.GetTenantRequest, context: grpc.ServicerContext) -> pb.Tenant:
        return tenant_to_proto(self._tenants.get(current_caller(), request.tenant_id))

    def ListTenants(self, request: pb.ListTenantsRequest, context: grpc.ServicerContext) -> pb.ListTenantsResponse:
        found, token = self._tenants.list(current_caller(), request.page_size, request.page_token)
        return pb.ListTenantsResponse(tenants=[tenant_to_proto(t) for t in found], next_page_token=token)

    def UpdateTenant(self, request: pb.UpdateTenantRequest, context: grpc.ServicerContext) -> pb.Tenant:
        return tenant_to_proto(
            self._tenants.update(current_caller(), tenant_from_proto(request.tenant), list(request.update_mask.paths))
        )


def wire(rt: Runtime) -> None:
    own = load(IpPoolSettings)
    tenants = TenantUseCases(rt.db, rt.clock.now)
    for tenant_id in filter(None, (t.strip() for t in own.seed_tenants.split(","))):
        tenants.ensure(Tenant(tenant_id=tenant_id))
    pb_grpc.add_IpPoolServiceServicer_to_server(
        IpPoolServicer(IpUseCases(rt.db, rt.clock.now), tenants), rt.grpc_server
    )


DEFINITION = ServiceDefinition(
    name="ip-pool",
    migrations=Path(__file__).parent / "adapters" / "migrations",
    wire=wire,
)
