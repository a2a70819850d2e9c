"""Recording a change of an IP: the IP stored, its history entry and its events, in the caller's unit of work.

Every write of an IP goes through `record_change` (a lifecycle transition through `record_transition`), so
the history and the events never disagree with the IP: IpRegistered for a new IP, IpStateChanged when its
state changed, IpQuotaChanged when today's quota changed, each naming the history entry that records it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from google.protobuf.message import Message

from emailengine.ippool.v1 import events_pb2
from ippool.app.unit_of_work import IpPoolUnitOfWork
from ippool.domain.history import DecisionKind, IpDecision, history_entry
from ippool.domain.ip import Ip
from ippool.domain.lifecycle import IpState, Transition
from ippool.domain.schedule import WarmupSchedule

_IP_STATES = events_pb2.IpStateChanged.DESCRIPTOR.fields_by_name["state"].enum_type


def state_number(state: IpState) -> int:
    """The event contract's number of an IP state."""
    return _IP_STATES.values_by_name[f"IP_STATE_{state}"].number


def record_change(
    uow: IpPoolUnitOfWork,
    *,
    before: Ip | None,
    after: Ip,
    schedule: WarmupSchedule,
    day: date,
    kind: DecisionKind,
    action: str,
    rule: str,
    reason: str,
    now: datetime,
    actor: str,
    figures: dict[str, Any] | None = None,
    notes: tuple[str, ...] = (),
    registered: bool = False,
    policy: Mapping[str, str] | None = None,
    listing: dict[str, Any] | None = None,
) -> IpDecision:
    """Stores `after`, adds the history entry and publishes what changed; the caller commits.

    `registered`: `after` is registered for its tenant, as a new IP (`before` None) or on a released address
    (`before` is what it was): IpRegistered is published and today's quota counts from 0. `policy`: the tenant
    policy values the change used; `listing`: the listing a listing or delisting entry is about.
    """
    if before is None:
        uow.ips.add(after)
    else:
        uow.ips.save(after)
    decision = uow.decisions.add(
        history_entry(
            before=after if registered else before or after,
            after=after,
            schedule=schedule,
            kind=kind,
            day=day,
            action=action,
            rule=rule,
            reason=reason,
            time=now,
            actor=actor,
            figures=figures,
            notes=notes,
            policy=policy,
            listing=listing,
        )
    )
    changes: list[Message] = []
    quota_after = after.effective_daily_quota(schedule, day)
    if registered:
        changes.append(
            events_pb2.IpRegistered(address=after.address, tenant_id=after.tenant_id, helo_hostname=after.helo_hostname)
        )
    elif before is not None and before.state != after.state:
        changes.append(
            events_pb2.IpStateChanged(
                address=after.address,
                tenant_id=after.tenant_id,
                previous_state=state_number(before.state),  # type: ignore[arg-type]
                state=state_number(after.state),  # type: ignore[arg-type]
                reason=reason,
                daily_quota=quota_after,
                decision_id=str(decision.decision_id),
            )
        )
    quota_before = 0 if registered or before is None else before.effective_daily_quota(schedule, day)
    if quota_before != quota_after:
        changes.append(
            quota_changed(after, day=day, previous=quota_before, current=quota_after, reason=reason, decision=decision)
        )
    if changes:
        uow.publish_all(changes, tenant_id=after.tenant_id)  # a state change and its quota's: one insert
    return decision


def record_transition(
    uow: IpPoolUnitOfWork,
    ip: Ip,
    transition: Transition,
    *,
    schedule: WarmupSchedule,
    day: date,
    action: str,
    rule: str,
    actor: str,
    reason: str = "",
    state_reason: str = "",
    released_at: datetime | None = None,
    policy: Mapping[str, str] | None = None,
    listing: dict[str, Any] | None = None,
) -> Ip:
    """A lifecycle transition of `ip` recorded (see `record_change`); returns the IP as it is now.

    `reason` (for the history and the events) is the transition's own unless given; the IP's `state_reason`
    becomes `state_reason` if given, else that reason when the state changed, and stays as it was otherwise.
    `released_at` is set on an address an admin releases.
    """
    why = reason or transition.reason
    after = replace(
        ip.with_status(transition.after),
        state_reason=state_reason or (why if transition.state_changed else ip.state_reason),
        update_time=transition.at,
        released_at=released_at or ip.released_at,
    )
    record_change(
        uow,
        before=ip,
        after=after,
        schedule=schedule,
        day=day,
        kind=DecisionKind.LIFECYCLE,
        action=action,
        rule=rule,
        reason=why,
        now=transition.at,
        actor=actor,
        policy=policy,
        listing=listing,
    )
    return after


def quota_changed(
    ip: Ip, *, day: date, previous: int, current: int, reason: str, decision: IpDecision
) -> events_pb2.IpQuotaChanged:
    return events_pb2.IpQuotaChanged(
        address=ip.address,
        tenant_id=ip.tenant_id,
        day=day.isoformat(),
        previous_daily_quota=previous,
        daily_quota=current,
        reason=reason,
        decision_id=str(decision.decision_id),
    )
