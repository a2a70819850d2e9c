"""The periodic work: the daily warmup decision, rotation, and the release of cooled-down standby IPs.

`run_daily_warmup(db, now)` is safe to run often and from any number of replicas at once:
- per tenant, the local day is computed from `now` (quotas reset at local midnight);
- each IP whose day is not decided yet is decided in its own transaction, under its row lock, and the
  decision row is unique per (address, day): a replica that loses the race sees the day decided (or hits
  the unique constraint and rolls back), so every IP advances exactly once per day, and a crash leaves only
  the IPs not yet done for the next run;
- days missed while nothing ran are caught up one by one (at most `MAX_CATCH_UP_DAYS`), each from the
  report of the day before it;
- then, once per tenant and day (a `tenant_day_runs` row written in the same transaction), the rotation
  decision: rests that are over end, due IPs start resting while the warm capacity stays above the floor.

`release_standbys(db, now)` brings STANDBY IPs back once delisted for the tenant's cool-down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ippool.adapters.store import Store
from ippool.app.records import SYSTEM_ACTOR, DecisionKind, IpRecord, TenantRecord
from ippool.app.shared import commit_change, local_today, require_schedule
from ippool.domain.health import DayReport
from ippool.domain.lifecycle import SENDING_STATES, IpState, release_standby
from ippool.domain.rotation import RotationCandidate, decide_rotation
from ippool.domain.schedule import WarmupSchedule, daily_quota
from ippool.domain.warmup import Action, apply_decision, decide_day
from libs.db import Database

log = logging.getLogger(__name__)

MAX_CATCH_UP_DAYS = 62
ROTATION = "ROTATION"


@dataclass
class DailyRun:
    decided: int = 0
    """IP-days decided by this run."""
    rested: int = 0
    back: int = 0


def day_report(store: Store, address: str, day: date, *, blocklisted: bool) -> DayReport:
    counts = store.day_counts(address, day)
    return DayReport(
        day=day,
        sent=sum(c.sent for c in counts.values()),
        delivered=sum(c.delivered for c in counts.values()),
        bounced=sum(c.bounced for c in counts.values()),
        complained=sum(c.complained for c in counts.values()),
        blocklisted=blocklisted,
        throttled_providers=frozenset(group for group, c in counts.items() if c.throttled > 0),
    )


def run_daily_warmup(db: Database, now: datetime) -> DailyRun:
    run = DailyRun()
    with db.transaction() as session:
        tenants = list(Store(session).tenants().values())
    for tenant in tenants:
        today = local_today(tenant, now)
        with db.transaction() as session:
            addresses = Store(session).ips_to_decide(tenant.tenant_id, today)
        for address in addresses:
            try:
                run.decided += decide_ip(db, address, today, now)
            except Exception:
                log.exception("warmup decision failed; retried on the next run", extra={"address": address})
        rotate_tenant(db, tenant, today, now, run)
    return run


def decide_ip(db: Database, address: str, today: date, now: datetime) -> int:
    """Decides every undecided day of the IP up to `today`; returns how many (0 if another replica did)."""
    try:
        with db.transaction() as session:
            store = Store(session)
            record = store.ip(address, lock=True)
            if record is None or record.state is IpState.RETIRED or record.decided_day >= today:
                return 0
            tenant = store.tenant(record.tenant_id)
            assert tenant is not None
            schedule = require_schedule(store, record)
            blocklisted = bool(store.listings(address))
            day = max(record.decided_day + timedelta(days=1), today - timedelta(days=MAX_CATCH_UP_DAYS))
            decided = 0
            while day <= today:
                report = day_report(store, address, day - timedelta(days=1), blocklisted=blocklisted)
                decision = decide_day(
                    today=day,
                    schedule=schedule,
                    position=record.position,
                    yesterday=report,
                    policy=tenant.policy.health,
                )
                status = apply_decision(record.status, schedule, decision)
                sent = decision.figures is not None and decision.figures.sent > 0
                after = replace(
                    record.with_status(status),
                    decided_day=day,
                    sending_day=1 if decision.action is Action.RESTART else record.sending_day + int(sent),
                    state_reason=decision.reason if status.state in SENDING_STATES else record.state_reason,
                    update_time=now,
                )
                commit_change(
                    session,
                    before=record,
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
                record = after
                decided += 1
                day += timedelta(days=1)
            return decided
    except IntegrityError:
        return 0  # another replica recorded the same (address, day) first


def rotate_tenant(db: Database, tenant: TenantRecord, today: date, now: datetime, run: DailyRun) -> None:
    """Once per tenant and local day: end rests that are over, start the rests that are due."""
    with db.transaction() as session:
        store = Store(session)
        if store.tenant_day_done(tenant.tenant_id, today, ROTATION):
            return
        resting = store.any_resting(tenant.tenant_id)
    if not tenant.policy.rotation.enabled and not resting:
        return
    try:
        with db.transaction() as session:
            store = Store(session)
            store.mark_tenant_day(tenant.tenant_id, today, ROTATION, now)
            current = store.tenant(tenant.tenant_id)
            assert current is not None
            records = {r.address: r for r in store.tenant_ips(tenant.tenant_id, include_retired=False, lock=True)}
            schedules = {a: require_schedule(store, r) for a, r in records.items()}
            fleet = [
                RotationCandidate(r.address, r.state, schedules[a], r.position, r.resting_until)
                for a, r in records.items()
            ]
            decision = decide_rotation(today=today, fleet=fleet, policy=current.policy.rotation)
            for address in decision.back:
                before = records[address]
                after = replace(before, resting_until=None, update_time=now)
                quota = daily_quota(schedules[address], after.position)
                _record_rotation(
                    session, before, after, schedules[address], today, now, "REST_OVER", f"rest over: {quota}/day"
                )
                run.back += 1
            for order in decision.rest:
                before = records[order.address]
                after = replace(
                    before,
                    position=order.position_after,
                    state=order.state_after if before.state in SENDING_STATES else before.state,
                    resting_until=order.resting_until,
                    state_reason=order.reason,
                    update_time=now,
                )
                _record_rotation(session, before, after, schedules[order.address], today, now, "REST", order.reason)
                run.rested += 1
    except IntegrityError:
        return  # another replica rotated this tenant today


def _record_rotation(
    session: Session,
    before: IpRecord,
    after: IpRecord,
    schedule: WarmupSchedule,
    day: date,
    now: datetime,
    action: str,
    why: str,
) -> None:
    commit_change(
        session,
        before=before,
        after=after,
        schedule=schedule,
        day=day,
        kind=DecisionKind.ROTATION,
        action=action,
        rule=ROTATION,
        reason=why,
        now=now,
        actor=SYSTEM_ACTOR,
    )


def release_standbys(db: Database, now: datetime) -> int:
    """STANDBY IPs delisted for at least the tenant's cool-down go back to sending (one step lower)."""
    with db.transaction() as session:
        candidates = Store(session).standby_delisted()
    released = 0
    for address in candidates:
        with db.transaction() as session:
            store = Store(session)
            record = store.ip(address, lock=True)
            if record is None or record.state is not IpState.STANDBY:
                continue
            tenant = store.tenant(record.tenant_id)
            assert tenant is not None
            schedule = require_schedule(store, record)
            transition = release_standby(
                record.status, schedule, now=now, cooldown=tenant.policy.health.standby_cooldown
            )
            if not transition.changed:
                continue
            after = replace(record.with_status(transition.after), state_reason=transition.reason, update_time=now)
            commit_change(
                session,
                before=record,
                after=after,
                schedule=schedule,
                day=local_today(tenant, now),
                kind=DecisionKind.LIFECYCLE,
                action="RELEASE",
                rule="COOLDOWN",
                reason=transition.reason,
                now=now,
                actor=SYSTEM_ACTOR,
            )
            released += 1
    return released
