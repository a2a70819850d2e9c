"""The periodic work: the daily warmup decision, rotation, and the release of cooled-down standby IPs.

`DailyUseCases.run_day()` is safe to run often and from any number of replicas at once:
- per tenant, the local day is computed from the clock (quotas reset at local midnight);
- each IP whose day is not decided yet is decided in its own unit of work, under its row lock, and the
  decision row is unique per (address, day): a replica that loses the race sees the day decided (or its
  insert is Aborted and rolled back), so every IP advances exactly once per day, and a crash leaves only
  the IPs not yet done for the next run;
- days missed while nothing ran are caught up one by one (at most `MAX_CATCH_UP_DAYS`), each from the
  report of the day before it;
- then, once per tenant and day (a tenant-day mark written in the same unit of work), the rotation
  decision: rests that are over end, due IPs start resting while the warm capacity stays above the floor.

`release_standbys()` brings STANDBY IPs back once delisted for the tenant's cool-down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from ippool.app.history import record_change, record_transition
from ippool.app.schedules import schedule_of, schedules_of
from ippool.app.unit_of_work import IpPoolUnitOfWork
from ippool.domain.history import SYSTEM_ACTOR, DecisionKind
from ippool.domain.lifecycle import SENDING_STATES, IpState, release_standby
from ippool.domain.rotation import RotationCandidate, decide_rotation
from ippool.domain.schedule import daily_quota
from ippool.domain.tenant import Tenant
from ippool.domain.usage import day_report
from ippool.domain.warmup import Action, apply_decision, decide_day
from libs.clock import Clock
from libs.errors import Aborted

log = logging.getLogger(__name__)

MAX_CATCH_UP_DAYS = 62
ROTATION = "ROTATION"


@dataclass
class DailyRun:
    decided: int = 0
    """IP-days decided by this run."""
    rested: int = 0
    back: int = 0


class DailyUseCases:
    def __init__(self, unit_of_work: Callable[[], IpPoolUnitOfWork], clock: Clock):
        self._uow = unit_of_work
        self._clock = clock

    def run_day(self) -> DailyRun:
        """Decides each IP's warmup day once its tenant's local day has begun, then rotates the tenant."""
        now = self._clock.now()
        run = DailyRun()
        with self._uow() as uow:
            tenants = uow.tenants.all()
        for tenant in tenants:
            today = tenant.local_day(now)
            with self._uow() as uow:
                addresses = uow.ips.undecided(tenant.tenant_id, today)
            for address in addresses:
                try:
                    run.decided += self._decide_ip(address, today, now)
                except Exception:
                    log.exception("warmup decision failed; retried on the next run", extra={"address": address})
            self._rotate(tenant, today, now, run)
        return run

    def _decide_ip(self, address: str, today: date, now: datetime) -> int:
        """Decides every undecided day of the IP up to `today`; returns how many (0 if another replica did)."""
        try:
            with self._uow() as uow:
                ip = uow.ips.get(address, lock=True)
                if ip is None or ip.state is IpState.RETIRED or ip.decided_day >= today:
                    return 0
                tenant = uow.tenants.get(ip.tenant_id)
                assert tenant is not None
                schedule = schedule_of(uow, ip)
                blocklisted = bool(uow.listings.zones(address))
                day = max(ip.decided_day + timedelta(days=1), today - timedelta(days=MAX_CATCH_UP_DAYS))
                decided = 0
                while day <= today:
                    yesterday = day - timedelta(days=1)
                    decision = decide_day(
                        today=day,
                        schedule=schedule,
                        position=ip.position,
                        yesterday=day_report(
                            day=yesterday,
                            counts=uow.delivery_stats.day_counts(address, yesterday),
                            blocklisted=blocklisted,
                        ),
                        policy=tenant.policy.health,
                    )
                    status = apply_decision(ip.status, schedule, decision)
                    sent = decision.figures is not None and decision.figures.sent > 0
                    after = replace(
                        ip.with_status(status),
                        decided_day=day,
                        sending_day=1 if decision.action is Action.RESTART else ip.sending_day + int(sent),
                        state_reason=decision.reason if status.state in SENDING_STATES else ip.state_reason,
                        update_time=now,
                    )
                    record_change(
                        uow,
                        before=ip,
                        after=after,
                        schedule=schedule,
                        day=day,
                        kind=DecisionKind.WARMUP,
                        action=decision.action.value,
                        rule=decision.rule.value,
                        reason=decision.reason,
                        figures=decision.figures.to_record() if decision.figures else None,
                        notes=decision.notes,
                        now=now,
                        actor=SYSTEM_ACTOR,
                    )
                    ip = after
                    decided += 1
                    day += timedelta(days=1)
                uow.commit()
                return decided
        except Aborted:
            return 0  # another replica recorded the same (address, day) first

    def _rotate(self, tenant: Tenant, today: date, now: datetime, run: DailyRun) -> None:
        """Once per tenant and local day: end rests that are over, start the rests that are due."""
        with self._uow() as uow:
            if uow.tenant_days.done(tenant.tenant_id, today, ROTATION):
                return
            resting = uow.ips.any_resting(tenant.tenant_id)
        if not tenant.policy.rotation.enabled and not resting:
            return
        try:
            with self._uow() as uow:
                # The mark first: on SQLite it takes the write lock, on PostgreSQL a racing replica waits on it.
                uow.tenant_days.mark(tenant.tenant_id, today, ROTATION, now)
                current = uow.tenants.get(tenant.tenant_id)
                assert current is not None
                ips = {ip.address: ip for ip in uow.ips.of_tenant(tenant.tenant_id, include_retired=False, lock=True)}
                schedules = schedules_of(uow, ips.values())
                fleet = [
                    RotationCandidate(
                        ip.address, ip.state, schedules[(ip.tenant_id, ip.schedule_id)], ip.position, ip.resting_until
                    )
                    for ip in ips.values()
                ]
                decision = decide_rotation(today=today, fleet=fleet, policy=current.policy.rotation)
                changes = []
                for address in decision.back:
                    before = ips[address]
                    after = replace(before, resting_until=None, update_time=now)
                    quota = daily_quota(schedules[(before.tenant_id, before.schedule_id)], after.position)
                    changes.append((before, after, "REST_OVER", f"rest over: {quota}/day"))
                    run.back += 1
                for order in decision.rest:
                    before = ips[order.address]
                    after = replace(
                        before,
                        position=order.position_after,
                        state=order.state_after if before.state in SENDING_STATES else before.state,
                        resting_until=order.resting_until,
                        state_reason=order.reason,
                        update_time=now,
                    )
                    changes.append((before, after, "REST", order.reason))
                    run.rested += 1
                for before, after, action, why in changes:
                    record_change(
                        uow,
                        before=before,
                        after=after,
                        schedule=schedules[(before.tenant_id, before.schedule_id)],
                        day=today,
                        kind=DecisionKind.ROTATION,
                        action=action,
                        rule=ROTATION,
                        reason=why,
                        now=now,
                        actor=SYSTEM_ACTOR,
                    )
                uow.commit()
        except Aborted:
            return  # another replica rotated this tenant today

    def release_standbys(self) -> int:
        """STANDBY IPs delisted for at least the tenant's cool-down go back to sending (one step lower)."""
        now = self._clock.now()
        with self._uow() as uow:
            candidates = uow.ips.standby_delisted()
        released = 0
        for address in candidates:
            with self._uow() as uow:
                ip = uow.ips.get(address, lock=True)
                if ip is None or ip.state is not IpState.STANDBY:
                    continue
                tenant = uow.tenants.get(ip.tenant_id)
                assert tenant is not None
                schedule = schedule_of(uow, ip)
                transition = release_standby(
                    ip.status, schedule, now=now, cooldown=tenant.policy.health.standby_cooldown
                )
                if not transition.changed:
                    continue
                record_transition(
                    uow,
                    ip,
                    transition,
                    schedule=schedule,
                    day=tenant.local_day(now),
                    action="RELEASE",
                    rule="COOLDOWN",
                    actor=SYSTEM_ACTOR,
                )
                uow.commit()
                released += 1
        return released
