"""Allocating a campaign's volume over a tenant's IPs (the rules are `ippool.domain.allocation`'s).

What an IP has used today, per provider group, is what it sent (delivery stats) or the level earlier
allocations committed it to (what it had used when they were made plus what they reserved), whichever is
more (`records.Usage`); an allocation only ever gets the room that is left. A reserving
allocation (not `validate_only`) is stored with its per-IP lines and counts as used for the rest of the
tenant's local day; the tenant's row lock serialises two allocations of one tenant, so together they never
exceed a quota either. Only the tenant's own IPs are ever read.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ippool.adapters.store import Store
from ippool.app.shared import local_today, require_schedule
from ippool.domain.allocation import MAX_PLAN_HORIZON_DAYS, AllocationResult, IpCapacity, allocate
from ippool.domain.providers import ProviderGroup
from ippool.domain.registration import validate_tenant_id
from ippool.domain.rotation import is_resting
from libs import audit
from libs.auth import Caller
from libs.db import Database
from libs.errors import InvalidArgument, NotFound, Violations

DEFAULT_PLAN_HORIZON_DAYS = 60


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
    problems.raise_if_any()
    if not by_provider:
        return volume
    if volume > broken_down:
        wanted[ProviderGroup.OTHER] = wanted.get(ProviderGroup.OTHER, 0) + volume - broken_down
    return wanted


class AllocationUseCases:
    def __init__(self, db: Database, now: Callable[[], datetime]):
        self._db = db
        self._now = now

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
        now = self._now()
        with self._db.transaction() as session:
            store = Store(session)
            if not validate_only and not store.lock_tenant_for_allocation(tenant_id):
                raise NotFound("tenant", tenant_id)
            tenant = store.tenant(tenant_id)
            if tenant is None:
                raise NotFound("tenant", tenant_id)
            today = local_today(tenant, now)
            records = store.tenant_ips(tenant_id)
            usage = store.usage([r.address for r in records], today)
            capacities = [
                IpCapacity(
                    address=r.address,
                    tenant_id=r.tenant_id,
                    state=r.state,
                    schedule=require_schedule(store, r),
                    position=r.position,
                    used_today=usage[r.address].total,
                    used_by_provider=usage[r.address].by_provider,
                    resting=is_resting(r.resting_until, today),
                )
                for r in records
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
            store.insert_allocation(
                allocation_id=allocation_id,
                tenant_id=tenant_id,
                day=today,
                requested=sum(result.requested.values()),
                allocated_today=result.allocated_today,
                remainder=result.remainder,
                lines=[
                    (a.address, group, n, usage[a.address].by_provider.get(group, 0) + n)
                    for a in result.allocations
                    for group, n in a.by_provider.items()
                ],
                now=now,
                actor=caller.subject,
            )
        return AllocationView(allocation_id, result)
