"""Allocating a campaign's volume over a tenant's IPs (the rules are `ippool.domain.allocation`'s).

What an IP has used today, per provider group, is what it sent (delivery stats) or the level earlier
allocations committed it to (what it had used when they were made plus what they reserved), whichever is
more (`domain.usage.Usage`); an allocation only ever gets the room that is left. A reserving
allocation (not `validate_only`) is stored with its per-IP lines and counts as used for the rest of the
tenant's local day; the tenant's row lock serialises two allocations of one tenant, so together they never
exceed a quota either. Only the tenant's own IPs are ever read.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ippool.app.ip_today import usage_on
from ippool.app.schedules import schedules_of
from ippool.app.unit_of_work import IpPoolUnitOfWork
from ippool.domain.allocation import MAX_PLAN_HORIZON_DAYS, AllocationResult, IpCapacity, allocate
from ippool.domain.providers import ProviderGroup
from ippool.domain.registration import validate_tenant_id
from ippool.domain.rotation import is_resting
from ippool.domain.usage import Reservation, ReservedLine
from libs import audit
from libs.auth import Caller
from libs.clock import Clock
from libs.errors import InvalidArgument, NotFound, Violations

DEFAULT_PLAN_HORIZON_DAYS = 60
# The most one call may ask for: every count of the answer (requested, remainder, plan days) fits the contract's
# 32-bit integers, and the request is refused whole, before anything is reserved.
MAX_VOLUME = 2**31 - 1


@dataclass(frozen=True)
class AllocationView:
    allocation_id: str
    """Empty for a validate_only allocation."""
    result: AllocationResult


def requested_volume(
    volume: int, by_provider: list[tuple[ProviderGroup | None, int]]
) -> int | dict[ProviderGroup, int]:
    """The request as the domain takes it; the part of `volume` not broken down goes to OTHER."""
    problems = Violations()
    if volume < 0:
        problems.add("volume", "must be a whole number of messages >= 0")
    wanted: dict[ProviderGroup, int] = {}
    for index, (group, count) in enumerate(by_provider):
        if group is None:
            problems.add(f"volume_by_provider[{index}].provider", "a provider group is required")
        if count < 0:
            problems.add(f"volume_by_provider[{index}].volume", "must be a whole number of messages >= 0")
        if group is not None and count >= 0:
            wanted[group] = wanted.get(group, 0) + count
    broken_down = sum(wanted.values())
    if by_provider and volume > 0 and broken_down > volume:
        problems.add("volume_by_provider", f"adds up to {broken_down}, more than volume {volume}")
    elif broken_down > MAX_VOLUME:
        problems.add("volume_by_provider", f"adds up to {broken_down}, more than {MAX_VOLUME} messages in one call")
    problems.raise_if_any()
    if not by_provider:
        return volume
    if volume > broken_down:
        wanted[ProviderGroup.OTHER] = wanted.get(ProviderGroup.OTHER, 0) + volume - broken_down
    return wanted


class AllocationUseCases:
    def __init__(self, unit_of_work: Callable[[], IpPoolUnitOfWork], clock: Clock):
        self._uow = unit_of_work
        self._clock = clock

    def allocate(
        self,
        caller: Caller,
        *,
        tenant_id: str,
        volume: int,
        volume_by_provider: list[tuple[ProviderGroup | None, int]],
        plan_horizon_days: int | None,
        validate_only: bool,
    ) -> AllocationView:
        problems = Violations()
        try:
            validate_tenant_id(tenant_id)
        except InvalidArgument as error:
            problems.items.extend(error.violations)
        if plan_horizon_days is not None and not 0 <= plan_horizon_days <= MAX_PLAN_HORIZON_DAYS:
            problems.add("plan_horizon_days", f"must be a whole number from 0 to {MAX_PLAN_HORIZON_DAYS}")
        try:
            requested = requested_volume(volume, volume_by_provider)
        except InvalidArgument as error:
            problems.items.extend(error.violations)
        problems.raise_if_any()
        caller.require_write(tenant_id)
        audit.note(tenant_id=tenant_id, resource=f"tenants/{tenant_id}")
        now = self._clock.now()
        with self._uow() as uow:
            if not validate_only and not uow.tenants.lock_for_allocation(tenant_id):
                raise NotFound("tenant", tenant_id)
            tenant = uow.tenants.get(tenant_id)
            if tenant is None:
                raise NotFound("tenant", tenant_id)
            today = tenant.local_day(now)
            ips = uow.ips.of_tenant(tenant_id)
            usage = usage_on(uow, {ip.address: today for ip in ips})
            schedules = schedules_of(uow, ips)
            capacities = [
                IpCapacity(
                    address=ip.address,
                    tenant_id=ip.tenant_id,
                    state=ip.state,
                    schedule=schedules[(ip.tenant_id, ip.schedule_id)],
                    position=ip.position,
                    used_today=usage[ip.address].total,
                    used_by_provider=usage[ip.address].by_provider,
                    resting=is_resting(ip.resting_until, today),
                )
                for ip in ips
            ]
            result = allocate(
                tenant_id=tenant_id,
                ips=capacities,
                volume=requested,
                today=today,
                shares=tenant.policy.provider_shares,
                plan_horizon_days=DEFAULT_PLAN_HORIZON_DAYS if plan_horizon_days is None else plan_horizon_days,
            )
            if validate_only:
                return AllocationView("", result)
            allocation_id = uuid.uuid4().hex
            uow.allocations.add(
                Reservation(
                    allocation_id=allocation_id,
                    tenant_id=tenant_id,
                    day=today,
                    requested=sum(result.requested.values()),
                    allocated_today=result.allocated_today,
                    remainder=result.remainder,
                    lines=tuple(
                        ReservedLine(a.address, group, n, usage[a.address].by_provider.get(group, 0) + n)
                        for a in result.allocations
                        for group, n in a.by_provider.items()
                    ),
                    time=now,
                    actor=caller.subject,
                )
            )
            uow.commit()
        return AllocationView(allocation_id, result)
