"""An IP's history: one entry per warmup decision, lifecycle change or rotation step, saying what changed,
by which rule, why, and who decided.

Public API:
    DecisionKind       -- WARMUP, LIFECYCLE, ROTATION
    SYSTEM_ACTOR       -- the actor of the periodic jobs and of signals without a caller
    IpDecision(...)    -- one entry; `decision_id` is set once stored
    history_entry(*, before, after, schedule, kind, day, action, rule, reason, time, actor, figures=None,
                  notes=()) -> IpDecision

The quotas recorded are the step's volumes before and after (what the IP sends when it sends), so a paused
IP's entry still shows where its warmup stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from ippool.domain.ip import Ip
from ippool.domain.lifecycle import IpState
from ippool.domain.schedule import WarmupSchedule, daily_quota

SYSTEM_ACTOR = "system"


class DecisionKind(StrEnum):
    WARMUP = "WARMUP"
    LIFECYCLE = "LIFECYCLE"
    ROTATION = "ROTATION"


@dataclass(frozen=True)
class IpDecision:
    """One entry of an IP's history."""

    address: str
    tenant_id: str
    """The tenant the IP belonged to when the entry was made."""
    kind: DecisionKind
    day: date
    action: str
    rule: str
    reason: str
    state_before: IpState
    state_after: IpState
    step_index_before: int
    step_index_after: int
    quota_before: int
    quota_after: int
    time: datetime
    actor: str
    figures: dict[str, Any] | None = None
    """The figures a warmup decision looked at (`warmup.DayFigures.to_record()`)."""
    notes: tuple[str, ...] = ()
    decision_id: int | None = None


def history_entry(
    *,
    before: Ip,
    after: Ip,
    schedule: WarmupSchedule,
    kind: DecisionKind,
    day: date,
    action: str,
    rule: str,
    reason: str,
    time: datetime,
    actor: str,
    figures: dict[str, Any] | None = None,
    notes: tuple[str, ...] = (),
) -> IpDecision:
    """The history entry of the change from `before` to `after` (the same IP twice for a registration)."""
    return IpDecision(
        address=after.address,
        tenant_id=after.tenant_id,
        kind=kind,
        day=day,
        action=action,
        rule=rule,
        reason=reason,
        figures=figures,
        notes=notes,
        state_before=before.state,
        state_after=after.state,
        step_index_before=before.position.step_index,
        step_index_after=after.position.step_index,
        quota_before=daily_quota(schedule, before.position),
        quota_after=daily_quota(schedule, after.position),
        time=time,
        actor=actor,
    )
