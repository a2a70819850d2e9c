"""ip-pool's gRPC servicer: proto <-> use cases, nothing more (assembled in bootstrap.py).

Run alone with `emailengine serve ip-pool`; `emailengine run` runs it beside the others.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import grpc
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from emailengine.ippool.v1 import ippool_service_pb2_grpc as pb_grpc
from ippool.app.allocation import AllocationUseCases, AllocationView
from ippool.app.ips import IpUseCases
from ippool.app.records import DecisionKind, DecisionRecord, ScheduleRecord, TenantRecord
from ippool.app.schedules import ScheduleUseCases, StepInput
from ippool.app.shared import IpView
from ippool.app.signals import SignalUseCases, StatsInput
from ippool.app.tenants import PART_FIELDS, PARTS, TenantUseCases
from ippool.domain.lifecycle import IpState
from ippool.domain.providers import ProviderGroup
from libs.errors import InvalidArgument
from libs.interceptor import current_caller

# -- enums -----------------------------------------------------------------------------------------


def _enum_name(enum: EnumTypeWrapper, value: int, prefix: str, field_name: str) -> str | None:
    """The enum value's name without its prefix; None when UNSPECIFIED; InvalidArgument when unknown."""
    if not value:
        return None
    try:
        return enum.Name(value).removeprefix(prefix)
    except ValueError:
        raise InvalidArgument(field_name, f"unknown value {value}") from None


def _state(state: IpState) -> int:
    return pb.IpState.Value(f"IP_STATE_{state}")


def _state_from(value: int) -> IpState | None:
    name = _enum_name(pb.IpState, value, "IP_STATE_", "state")
    return IpState(name) if name else None


def _provider(group: ProviderGroup) -> int:
    return pb.ProviderGroup.Value(f"PROVIDER_GROUP_{group}")


def _provider_from(value: int, field_name: str) -> ProviderGroup | None:
    name = _enum_name(pb.ProviderGroup, value, "PROVIDER_GROUP_", field_name)
    return ProviderGroup(name) if name else None


def _kind(kind: DecisionKind) -> int:
    return pb.DecisionKind.Value(f"DECISION_KIND_{kind}")


def _kind_from(value: int) -> DecisionKind | None:
    name = _enum_name(pb.DecisionKind, value, "DECISION_KIND_", "kind")
    return DecisionKind(name) if name else None


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _set_time(target: Any, value: datetime | None) -> None:
    if value is not None:
        target.FromDatetime(value)


def _volumes(by_provider: dict[ProviderGroup, int]) -> list[pb.ProviderVolume]:
    return [pb.ProviderVolume(provider=_provider(g), volume=by_provider[g]) for g in ProviderGroup if g in by_provider]


# -- IPs -------------------------------------------------------------------------------------------


def ip_to_proto(view: IpView) -> pb.Ip:
    ip, quota = view.ip, view.quota
    message = pb.Ip(
        address=ip.address,
        tenant_id=ip.tenant_id,
        purpose=ip.purpose,
        pool=ip.pool,
        pmta_node=ip.pmta_node,
        helo_hostname=ip.helo_hostname,
        state=_state(ip.state),  # type: ignore[arg-type]
        state_reason=ip.state_reason,
        warmup=pb.WarmupPosition(
            schedule_id=ip.schedule_id,
            step_index=ip.position.step_index,
            sending_day_in_step=ip.position.sending_day_in_step,
            sending_day=ip.sending_day,
            step_daily_volume=view.step_daily_volume,
            last_sending_day=_day(ip.position.last_sending_day),
            decided_day=_day(ip.decided_day),
            resting_until=_day(ip.resting_until),
        ),
        quota=pb.Quota(
            day=_day(quota.day),
            daily=quota.daily,
            hourly=quota.hourly,
            used_today=quota.used_today,
            remaining_today=quota.remaining_today,
            by_provider=[
                pb.ProviderQuota(
                    provider=_provider(p.provider),  # type: ignore[arg-type]
                    cap=p.cap,
                    used_today=p.used_today,
                    remaining_today=p.remaining_today,
                )
                for p in quota.by_provider
            ],
        ),
        active_listings=list(view.active_listings),
    )
    _set_time(message.create_time, ip.create_time)
    _set_time(message.update_time, ip.update_time)
    _set_time(message.standby_since, ip.standby_since)
    _set_time(message.delisted_at, ip.delisted_at)
    return message


def decision_to_proto(record: DecisionRecord) -> pb.IpDecision:
    message = pb.IpDecision(
        decision_id=str(record.decision_id),
        address=record.address,
        tenant_id=record.tenant_id,
        kind=_kind(record.kind),  # type: ignore[arg-type]
        day=_day(record.day),
        action=record.action,
        rule=record.rule,
        reason=record.reason,
        notes=list(record.notes),
        state_before=_state(record.state_before),  # type: ignore[arg-type]
        state_after=_state(record.state_after),  # type: ignore[arg-type]
        step_index_before=record.step_index_before,
        step_index_after=record.step_index_after,
        quota_before=record.quota_before,
        quota_after=record.quota_after,
        actor=record.actor,
    )
    _set_time(message.time, record.time)
    if record.figures:
        f = record.figures
        figures = message.figures
        figures.day = f["day"]
        for name in ("target", "sent", "delivered", "bounced", "complained", "delivered_share_basis"):
            setattr(figures, name, int(f[name]))
        for name in ("bounce_rate_counted", "complaint_rate_counted", "blocklisted"):
            setattr(figures, name, bool(f[name]))
        for name in ("bounce_rate", "complaint_rate", "delivered_share"):
            if f.get(name) is not None:
                setattr(figures, name, float(f[name]))
        figures.throttled_providers.extend(f.get("throttled_providers") or [])
    return message


# -- tenants ---------------------------------------------------------------------------------------


def tenant_to_proto(record: TenantRecord) -> pb.Tenant:
    policy = record.policy
    health, shares, rotation = policy.health, policy.provider_shares, policy.rotation
    message = pb.Tenant(
        tenant_id=record.tenant_id,
        display_name=record.display_name,
        time_zone=policy.window.time_zone,
        sending_window_start_hour=policy.window.start_hour,
        sending_window_end_hour=policy.window.end_hour,
        default_schedule_id=policy.schedule_id,
        health=pb.HealthGates(
            min_delivered_share=health.min_delivered_share,
            max_bounce_rate_to_advance=health.max_bounce_rate_to_advance,
            max_complaint_rate_to_advance=health.max_complaint_rate_to_advance,
            step_back_bounce_rate=health.step_back_bounce_rate,
            step_back_complaint_rate=health.step_back_complaint_rate,
            min_sample=health.min_sample,
            idle_rewarm_days=health.idle_rewarm_days,
        ),
        provider_shares=pb.ProviderShares(
            gmail=shares.gmail, microsoft=shares.microsoft, yahoo=shares.yahoo, other=shares.other
        ),
        rotation=pb.RotationPolicy(
            enabled=rotation.enabled,
            full_use_days=rotation.full_use_days,
            rest_days=rotation.rest_days,
            warm_capacity_floor=rotation.warm_capacity_floor,
            rewarm_steps_back=rotation.rewarm_steps_back,
        ),
    )
    message.health.standby_cooldown.FromTimedelta(health.standby_cooldown)
    _set_time(message.create_time, record.create_time)
    _set_time(message.update_time, record.update_time)
    return message


def _part_value(part: Message, name: str) -> Any:
    """A policy field's value, or None when the request leaves it unset (= its default)."""
    if name not in part.DESCRIPTOR.fields_by_name or not part.HasField(name):
        return None
    value = getattr(part, name)
    return value.ToTimedelta() if isinstance(value, Message) else value


def tenant_changes(message: pb.Tenant, paths: list[str]) -> dict[str, Any]:
    """Field path -> value for the use cases; without paths, every field the request sets (AIP-134)."""
    paths = list(paths)
    if not paths:
        for descriptor, value in message.ListFields():
            if descriptor.name in ("tenant_id", "create_time", "update_time"):
                continue
            if descriptor.name in PARTS:
                paths += [f"{descriptor.name}.{sub.name}" for sub, _ in value.ListFields()]
            else:
                paths.append(descriptor.name)
    changes: dict[str, Any] = {}
    for path in paths:
        part, _, name = path.partition(".")
        if part in PARTS:
            sub = getattr(message, part)
            changes[path] = {n: _part_value(sub, n) for n in PART_FIELDS[part]} if not name else _part_value(sub, name)
        elif path in pb.Tenant.DESCRIPTOR.fields_by_name and not name:
            changes[path] = getattr(message, path)
        else:
            changes[path] = None  # unknown: the use case names it in its error
    return changes


# -- schedules and allocations ---------------------------------------------------------------------


def schedule_to_proto(record: ScheduleRecord) -> pb.Schedule:
    message = pb.Schedule(
        schedule_id=record.schedule.schedule_id,
        tenant_id=record.tenant_id,
        display_name=record.display_name,
        built_in=record.built_in,
        steps=[
            pb.WarmupStep(daily_volume=s.daily_volume, sending_days=s.sending_days or 0) for s in record.schedule.steps
        ],
    )
    _set_time(message.create_time, record.create_time)
    return message


def allocation_to_proto(view: AllocationView) -> pb.Allocation:
    result = view.result
    return pb.Allocation(
        allocation_id=view.allocation_id,
        tenant_id=result.tenant_id,
        day=_day(result.day),
        requested=sum(result.requested.values()),
        requested_by_provider=_volumes(result.requested),
        allocations=[
            pb.IpAllocation(address=a.address, volume=a.total, by_provider=_volumes(a.by_provider))
            for a in result.allocations
        ],
        allocated_today=result.allocated_today,
        remainder=result.remainder,
        remainder_by_provider=_volumes(result.remainder_by_provider),
        plan=[
            pb.PlanDay(day_offset=d.day_offset, day=_day(d.day), volume=d.total, by_provider=_volumes(d.by_provider))
            for d in result.plan
        ],
        unplanned=result.unplanned,
        unplanned_by_provider=_volumes(result.unplanned_by_provider),
        excluded=[pb.ExcludedIp(address=e.address, reason=e.reason) for e in result.excluded],
    )


# -- the servicer ----------------------------------------------------------------------------------


class IpPoolServicer(pb_grpc.IpPoolServiceServicer):
    def __init__(
        self,
        ips: IpUseCases,
        tenants: TenantUseCases,
        schedules: ScheduleUseCases,
        signals: SignalUseCases,
        allocations: AllocationUseCases,
    ):
        self._ips = ips
        self._tenants = tenants
        self._schedules = schedules
        self._signals = signals
        self._allocations = allocations

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
        found, token = self._ips.list(
            current_caller(),
            tenant_id=request.tenant_id,
            state=_state_from(request.state),
            size=request.page_size,
            token=request.page_token,
        )
        return pb.ListIpsResponse(ips=[ip_to_proto(v) for v in found], next_page_token=token)

    def PauseIp(self, request: pb.PauseIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(self._ips.command(current_caller(), request.address, "PAUSE", request.reason))

    def ResumeIp(self, request: pb.ResumeIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(self._ips.command(current_caller(), request.address, "RESUME", request.reason))

    def RetireIp(self, request: pb.RetireIpRequest, context: grpc.ServicerContext) -> pb.Ip:
        return ip_to_proto(self._ips.command(current_caller(), request.address, "RETIRE", request.reason))

    def ListIpDecisions(
        self, request: pb.ListIpDecisionsRequest, context: grpc.ServicerContext
    ) -> pb.ListIpDecisionsResponse:
        found, token = self._ips.decisions(
            current_caller(),
            request.address,
            kind=_kind_from(request.kind),
            size=request.page_size,
            token=request.page_token,
        )
        return pb.ListIpDecisionsResponse(decisions=[decision_to_proto(d) for d in found], next_page_token=token)

    def RecordDeliveryStats(
        self, request: pb.RecordDeliveryStatsRequest, context: grpc.ServicerContext
    ) -> pb.RecordDeliveryStatsResponse:
        entries = [
            StatsInput(
                address=s.address,
                day=s.day,
                provider=_provider_from(s.provider, f"stats[{i}].provider"),
                sent=s.sent,
                delivered=s.delivered,
                bounced=s.bounced,
                complained=s.complained,
                throttled=s.throttled,
            )
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
            )
        )

    def AllocateVolume(self, request: pb.AllocateVolumeRequest, context: grpc.ServicerContext) -> pb.Allocation:
        return allocation_to_proto(
            self._allocations.allocate(
                current_caller(),
                tenant_id=request.tenant_id,
                volume=request.volume,
                volume_by_provider=[
                    (_provider_from(v.provider, f"volume_by_provider[{i}].provider"), v.volume)
                    for i, v in enumerate(request.volume_by_provider)
                ],
                plan_horizon_days=request.plan_horizon_days if request.HasField("plan_horizon_days") else None,
                validate_only=request.validate_only,
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
