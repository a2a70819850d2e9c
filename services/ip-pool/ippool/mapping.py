"""The ip-pool's proto <-> dataclass mapping, for the servicer (`server.py`).

Policy parts (`HealthGates`, `ProviderShares`, `RotationPolicy`) are mapped field by field from the domain
dataclasses (`dataclasses.fields`), so a new gate needs its field in the domain and in the proto, nothing here.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime, timedelta
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message

from emailengine.ippool.v1 import ippool_service_pb2 as pb
from ippool.app.allocation import AllocationView
from ippool.app.ip_today import IpToday
from ippool.app.tenants import PART_FIELDS, PARTS
from ippool.domain.history import DecisionKind, IpDecision
from ippool.domain.lifecycle import IpState
from ippool.domain.providers import ProviderGroup
from ippool.domain.schedule import TenantSchedule
from ippool.domain.tenant import Tenant
from ippool.domain.usage import DayCounts
from libs.errors import InvalidArgument

# -- enums -----------------------------------------------------------------------------------------------


def _enum_name(enum: EnumTypeWrapper, value: int, prefix: str, field_name: str) -> str | None:
    """The enum value's name without its prefix; None when UNSPECIFIED; InvalidArgument when unknown."""
    if not value:
        return None
    try:
        return enum.Name(value).removeprefix(prefix)
    except ValueError:
        raise InvalidArgument(field_name, f"unknown value {value}") from None


def state_to_proto(state: IpState) -> int:
    return pb.IpState.Value(f"IP_STATE_{state}")


def state_from_proto(value: int) -> IpState | None:
    name = _enum_name(pb.IpState, value, "IP_STATE_", "state")
    return IpState(name) if name else None


def provider_to_proto(group: ProviderGroup) -> int:
    return pb.ProviderGroup.Value(f"PROVIDER_GROUP_{group}")


def provider_from_proto(value: int, field_name: str) -> ProviderGroup | None:
    name = _enum_name(pb.ProviderGroup, value, "PROVIDER_GROUP_", field_name)
    return ProviderGroup(name) if name else None


def kind_to_proto(kind: DecisionKind) -> int:
    return pb.DecisionKind.Value(f"DECISION_KIND_{kind}")


def kind_from_proto(value: int) -> DecisionKind | None:
    name = _enum_name(pb.DecisionKind, value, "DECISION_KIND_", "kind")
    return DecisionKind(name) if name else None


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _set_time(target: Any, value: datetime | None) -> None:
    if value is not None:
        target.FromDatetime(value)


def _volumes(by_provider: dict[ProviderGroup, int]) -> list[pb.ProviderVolume]:
    return [
        pb.ProviderVolume(provider=provider_to_proto(g), volume=by_provider[g])  # type: ignore[arg-type]
        for g in ProviderGroup
        if g in by_provider
    ]


# -- IPs -------------------------------------------------------------------------------------------------


def ip_to_proto(found: IpToday) -> pb.Ip:
    ip, quota = found.ip, found.quota
    message = pb.Ip(
        address=ip.address,
        tenant_id=ip.tenant_id,
        purpose=ip.purpose,
        pool=ip.pool,
        pmta_node=ip.pmta_node,
        helo_hostname=ip.helo_hostname,
        state=state_to_proto(ip.state),  # type: ignore[arg-type]
        state_reason=ip.state_reason,
        warmup=pb.WarmupPosition(
            schedule_id=ip.schedule_id,
            step_index=ip.position.step_index,
            sending_day_in_step=ip.position.sending_day_in_step,
            sending_day=ip.sending_day,
            step_daily_volume=found.step_daily_volume,
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
                    provider=provider_to_proto(p.provider),  # type: ignore[arg-type]
                    cap=p.cap,
                    used_today=p.used_today,
                    remaining_today=p.remaining_today,
                )
                for p in quota.by_provider
            ],
        ),
        active_listings=list(found.active_listings),
    )
    _set_time(message.create_time, ip.create_time)
    _set_time(message.update_time, ip.update_time)
    _set_time(message.standby_since, ip.standby_since)
    _set_time(message.delisted_at, ip.delisted_at)
    _set_time(message.release_time, ip.released_at)
    return message


def counts_from_proto(stats: pb.DeliveryStats) -> DayCounts:
    return DayCounts(**{f.name: getattr(stats, f.name) for f in fields(DayCounts)})


_AS_PYTHON = {
    FieldDescriptor.CPPTYPE_INT32: int,
    FieldDescriptor.CPPTYPE_DOUBLE: float,
    FieldDescriptor.CPPTYPE_BOOL: bool,
    FieldDescriptor.CPPTYPE_STRING: str,
}


def _figures_to_proto(figures: dict[str, Any], message: pb.DayFigures) -> None:
    """The stored figures (`warmup.DayFigures.to_record()`) into the message, field by field."""
    for descriptor in message.DESCRIPTOR.fields:
        value = figures.get(descriptor.name)
        if value is None:
            continue
        convert = _AS_PYTHON[descriptor.cpp_type]
        if descriptor.is_repeated:
            getattr(message, descriptor.name).extend(convert(v) for v in value)
        else:
            setattr(message, descriptor.name, convert(value))


def decision_to_proto(decision: IpDecision) -> pb.IpDecision:
    message = pb.IpDecision(
        decision_id=str(decision.decision_id),
        address=decision.address,
        tenant_id=decision.tenant_id,
        kind=kind_to_proto(decision.kind),  # type: ignore[arg-type]
        day=_day(decision.day),
        action=decision.action,
        rule=decision.rule,
        reason=decision.reason,
        notes=list(decision.notes),
        state_before=state_to_proto(decision.state_before),  # type: ignore[arg-type]
        state_after=state_to_proto(decision.state_after),  # type: ignore[arg-type]
        step_index_before=decision.step_index_before,
        step_index_after=decision.step_index_after,
        quota_before=decision.quota_before,
        quota_after=decision.quota_after,
        actor=decision.actor,
    )
    _set_time(message.time, decision.time)
    if decision.figures:
        _figures_to_proto(decision.figures, message.figures)
    return message


# -- tenants ---------------------------------------------------------------------------------------------


def _part_to_proto(part: object, message: Message) -> None:
    for item in fields(part):  # type: ignore[arg-type]
        value = getattr(part, item.name)
        if isinstance(value, timedelta):
            getattr(message, item.name).FromTimedelta(value)
        else:
            setattr(message, item.name, value)


def tenant_to_proto(tenant: Tenant) -> pb.Tenant:
    policy = tenant.policy
    message = pb.Tenant(
        tenant_id=tenant.tenant_id,
        display_name=tenant.display_name,
        time_zone=policy.window.time_zone,
        sending_window_start_hour=policy.window.start_hour,
        sending_window_end_hour=policy.window.end_hour,
        default_schedule_id=policy.schedule_id,
    )
    for part in PARTS:
        _part_to_proto(getattr(policy, part), getattr(message, part))
    _set_time(message.create_time, tenant.create_time)
    _set_time(message.update_time, tenant.update_time)
    return message


def _part_value(part: Message, path: str) -> Any:
    """A policy field's value, or None when the request leaves it unset (= its default)."""
    name = path.rpartition(".")[2]
    if name not in part.DESCRIPTOR.fields_by_name or not part.HasField(name):
        return None
    value = getattr(part, name)
    if not isinstance(value, Message):
        return value
    try:
        return value.ToTimedelta()
    except (OverflowError, ValueError):  # beyond what a duration can be here (or nanos out of range)
        raise InvalidArgument(f"tenant.{path}", "is not a duration this API accepts") from None


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
            changes[path] = (
                {n: _part_value(sub, f"{part}.{n}") for n in PART_FIELDS[part]} if not name else _part_value(sub, path)
            )
        elif path in pb.Tenant.DESCRIPTOR.fields_by_name and not name:
            changes[path] = getattr(message, path)
        else:
            changes[path] = None  # unknown: the use case names it in its error
    return changes


# -- schedules and allocations ---------------------------------------------------------------------------


def schedule_to_proto(found: TenantSchedule) -> pb.Schedule:
    message = pb.Schedule(
        schedule_id=found.schedule.schedule_id,
        tenant_id=found.tenant_id,
        display_name=found.display_name,
        built_in=found.built_in,
        steps=[
            pb.WarmupStep(daily_volume=s.daily_volume, sending_days=s.sending_days or 0) for s in found.schedule.steps
        ],
    )
    _set_time(message.create_time, found.create_time)
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
