"""THE place where an IP's warmup day is decided.

Public API:
    Action        -- ADVANCE, HOLD, STEP_BACK, RESTART
    Rule          -- which rule decided (stable names, kept in the IP's history)
    DayFigures    -- the figures a decision used (sent, delivered, bounces, complaints, rates, target, ...)
    Decision      -- action + rule + human reason + figures + position before/after; `.to_record()` for storage
    decide_day(*, today, schedule, position, yesterday, policy=DEFAULT_HEALTH_POLICY) -> Decision
    apply_decision(status, schedule, decision) -> IpStatus

`decide_day` runs once per IP per tenant-local day, at local midnight, for every IP that is not RETIRED
(paused and standby IPs too, so the idle rule sees them). `yesterday` is the report of the local day before
`today`, or None when nothing was recorded. The rules, first match wins:

 1. IDLE_RESTART       no mail for `idle_rewarm_days` (30) days -> back to step 0, day 1. Providers forget an
                       IP's reputation after about a month (SendGrid re-warms after 30 idle days); restarting
                       from the first step is the safe choice, and it is idempotent while the IP stays idle.
 2. NO_SENDING         nothing sent yesterday -> hold: warmup counts sending days, not calendar days.
 3. BOUNCE_STEP_BACK   bounce rate >= 5 %        -> one step down, day 1 of that step.
    COMPLAINT_STEP_BACK complaint rate >= 0.3 %  -> one step down, day 1 of that step.
 4. BLOCKLISTED        an active listing         -> hold (the lifecycle puts the IP in STANDBY).
    PROVIDER_THROTTLED a provider throttled it   -> hold.
    BOUNCE_HOLD        bounce rate >= 2 %        -> hold.
    COMPLAINT_HOLD     complaint rate >= 0.1 %   -> hold.
    DELIVERED_SHARE    delivered < 90 % of target -> hold.
 5. HEALTHY            everything passed         -> advance: one more sending day counted.

A rate counts only when it rests on `min_sample` (100) messages; below that it is shown, noted, and treated as
healthy (2 bounces out of 20 change nothing).

Tiny-step relief for the delivered-share rule: when the day's target itself is below `min_sample` (the default
first step, 50/day), a shortfall in volume says nothing about the IP, so the share is taken over what was sent
(capped at the target): 20 sent and 18 delivered on a 50 target is a healthy day, and a tenant with little
mail is not stuck on step 0 forever. From a target of `min_sample` up, the IP must deliver 90 % of its target
to climb: climbing to a volume it never carried is exactly what warmup exists to prevent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from ippool.domain.health import DEFAULT_HEALTH_POLICY, DayReport, HealthPolicy
from ippool.domain.lifecycle import SENDING_STATES, IpStatus, sending_state
from ippool.domain.schedule import WarmupPosition, WarmupSchedule, advance, daily_quota, restart, step_back


class Action(StrEnum):
    ADVANCE = "ADVANCE"
    HOLD = "HOLD"
    STEP_BACK = "STEP_BACK"
    RESTART = "RESTART"


class Rule(StrEnum):
    IDLE_RESTART = "IDLE_RESTART"
    NO_SENDING = "NO_SENDING"
    BOUNCE_STEP_BACK = "BOUNCE_STEP_BACK"
    COMPLAINT_STEP_BACK = "COMPLAINT_STEP_BACK"
    BLOCKLISTED = "BLOCKLISTED"
    PROVIDER_THROTTLED = "PROVIDER_THROTTLED"
    BOUNCE_HOLD = "BOUNCE_HOLD"
    COMPLAINT_HOLD = "COMPLAINT_HOLD"
    DELIVERED_SHARE = "DELIVERED_SHARE"
    HEALTHY = "HEALTHY"


@dataclass(frozen=True)
class DayFigures:
    """Everything a decision looked at, so the history explains itself without the raw accounting."""

    day: date
    target: int
    sent: int
    delivered: int
    bounced: int
    complained: int
    bounce_rate: float | None
    """bounced / sent; None when nothing was sent."""
    bounce_rate_counted: bool
    complaint_rate: float | None
    """complained / delivered; None when nothing was delivered."""
    complaint_rate_counted: bool
    delivered_share: float | None
    """delivered / delivered_share_basis; None when nothing was sent."""
    delivered_share_basis: int
    """The target, or what was sent (up to the target) under the tiny-step relief."""
    blocklisted: bool
    throttled_providers: tuple[str, ...]

    def to_record(self) -> dict[str, Any]:
        record = {name: getattr(self, name) for name in self.__dataclass_fields__}
        record["day"] = self.day.isoformat()
        record["throttled_providers"] = list(self.throttled_providers)
        return record


@dataclass(frozen=True)
class Decision:
    """One day's warmup outcome for one IP; persist it as the IP's history entry for `day`."""

    day: date
    """The local day this decision sets the quota for (the figures are from the day before)."""
    action: Action
    rule: Rule
    reason: str
    figures: DayFigures | None
    position_before: WarmupPosition
    position_after: WarmupPosition
    quota_before: int
    quota_after: int
    notes: tuple[str, ...] = ()

    def to_record(self) -> dict[str, Any]:
        """JSON-ready form for the decisions history."""

        def position(value: WarmupPosition) -> dict[str, Any]:
            last = value.last_sending_day
            return {
                "step_index": value.step_index,
                "sending_day_in_step": value.sending_day_in_step,
                "last_sending_day": last.isoformat() if last else None,
            }

        return {
            "day": self.day.isoformat(),
            "action": self.action.value,
            "rule": self.rule.value,
            "reason": self.reason,
            "figures": self.figures.to_record() if self.figures else None,
            "position_before": position(self.position_before),
            "position_after": position(self.position_after),
            "quota_before": self.quota_before,
            "quota_after": self.quota_after,
            "notes": list(self.notes),
        }


def _pct(rate: float) -> str:
    return f"{rate:.2%}"


def _figures(report: DayReport, target: int, policy: HealthPolicy) -> DayFigures:
    bounce_rate = report.bounced / report.sent if report.sent else None
    complaint_rate = report.complained / report.delivered if report.delivered else None
    basis = target if target >= policy.min_sample else min(target, report.sent)
    return DayFigures(
        day=report.day,
        target=target,
        sent=report.sent,
        delivered=report.delivered,
        bounced=report.bounced,
        complained=report.complained,
        bounce_rate=bounce_rate,
        bounce_rate_counted=bounce_rate is not None and report.sent >= policy.min_sample,
        complaint_rate=complaint_rate,
        complaint_rate_counted=complaint_rate is not None and report.delivered >= policy.min_sample,
        delivered_share=report.delivered / basis if basis else None,
        delivered_share_basis=basis,
        blocklisted=report.blocklisted,
        throttled_providers=tuple(sorted(group.value for group in report.throttled_providers)),
    )


@dataclass(frozen=True)
class _Finding:
    """A failed gate: its rule and the sentence that explains it with figures."""

    rule: Rule
    text: str


def _step_back_findings(f: DayFigures, policy: HealthPolicy) -> list[_Finding]:
    found: list[_Finding] = []
    if f.bounce_rate_counted and f.bounce_rate is not None and f.bounce_rate >= policy.step_back_bounce_rate:
        found.append(
            _Finding(
                Rule.BOUNCE_STEP_BACK,
                f"bounce rate {_pct(f.bounce_rate)} ({f.bounced} of {f.sent} sent) >= "
                f"step-back limit {_pct(policy.step_back_bounce_rate)}",
            )
        )
    if (
        f.complaint_rate_counted
        and f.complaint_rate is not None
        and f.complaint_rate >= policy.step_back_complaint_rate
    ):
        found.append(
            _Finding(
                Rule.COMPLAINT_STEP_BACK,
                f"complaint rate {_pct(f.complaint_rate)} ({f.complained} of {f.delivered} delivered)"
                f" >= step-back limit {_pct(policy.step_back_complaint_rate)}",
            )
        )
    return found


def _hold_findings(f: DayFigures, policy: HealthPolicy) -> list[_Finding]:
    found: list[_Finding] = []
    if f.blocklisted:
        found.append(_Finding(Rule.BLOCKLISTED, "the IP has an active blocklisting"))
    if f.throttled_providers:
        found.append(_Finding(Rule.PROVIDER_THROTTLED, f"throttled by {', '.join(f.throttled_providers)}"))
    if f.bounce_rate_counted and f.bounce_rate is not None and f.bounce_rate >= policy.max_bounce_rate_to_advance:
        found.append(
            _Finding(
                Rule.BOUNCE_HOLD,
                f"bounce rate {_pct(f.bounce_rate)} ({f.bounced} of {f.sent} sent) >= "
                f"advance limit {_pct(policy.max_bounce_rate_to_advance)}",
            )
        )
    if (
        f.complaint_rate_counted
        and f.complaint_rate is not None
        and f.complaint_rate >= policy.max_complaint_rate_to_advance
    ):
        found.append(
            _Finding(
                Rule.COMPLAINT_HOLD,
                f"complaint rate {_pct(f.complaint_rate)} ({f.complained} of {f.delivered} delivered)"
                f" >= advance limit {_pct(policy.max_complaint_rate_to_advance)}",
            )
        )
    if f.delivered_share is not None and f.delivered_share < policy.min_delivered_share:
        found.append(
            _Finding(
                Rule.DELIVERED_SHARE,
                f"delivered {f.delivered} of {f.delivered_share_basis} "
                f"({_pct(f.delivered_share)}) < {_pct(policy.min_delivered_share)} of the day's target",
            )
        )
    return found


def _sample_notes(f: DayFigures, policy: HealthPolicy) -> list[str]:
    """Say out loud when a rate was seen but did not count, so '2 bounces of 20' is visibly ignored."""
    notes: list[str] = []
    if f.bounce_rate is not None and not f.bounce_rate_counted:
        notes.append(f"bounce rate {_pct(f.bounce_rate)} rests on {f.sent} sent (< {policy.min_sample}): not counted")
    if f.complaint_rate is not None and not f.complaint_rate_counted:
        notes.append(
            f"complaint rate {_pct(f.complaint_rate)} rests on {f.delivered} delivered "
            f"(< {policy.min_sample}): not counted"
        )
    if f.delivered_share_basis != f.target:
        notes.append(
            f"target {f.target} is below the minimum sample {policy.min_sample}: delivered share "
            f"taken over {f.delivered_share_basis} sent"
        )
    return notes


def decide_day(
    *,
    today: date,
    schedule: WarmupSchedule,
    position: WarmupPosition,
    yesterday: DayReport | None,
    policy: HealthPolicy = DEFAULT_HEALTH_POLICY,
) -> Decision:
    """Decide today's warmup position from yesterday's results (see the module docstring for the rules)."""
    if yesterday is not None and yesterday.day != today - timedelta(days=1):
        raise ValueError(f"the report for {yesterday.day} cannot decide {today}: it must be the day before")
    quota_before = daily_quota(schedule, position)

    def decided(
        action: Action,
        rule: Rule,
        reason: str,
        after: WarmupPosition,
        figures: DayFigures | None = None,
        notes: list[str] | None = None,
    ) -> Decision:
        return Decision(
            day=today,
            action=action,
            rule=rule,
            reason=reason,
            figures=figures,
            position_before=position,
            position_after=after,
            quota_before=quota_before,
            quota_after=daily_quota(schedule, after),
            notes=tuple(notes or ()),
        )

    if yesterday is None or yesterday.sent == 0:
        last = position.last_sending_day
        idle_days = (today - last).days if last is not None else 0
        at_start = position.step_index == 0 and position.sending_day_in_step == 1
        if idle_days >= policy.idle_rewarm_days and not at_start:
            after = restart(position)
            return decided(
                Action.RESTART,
                Rule.IDLE_RESTART,
                f"no mail since {last} ({idle_days} days >= {policy.idle_rewarm_days}): warmup restarts "
                f"at {daily_quota(schedule, after)}/day",
                after,
            )
        figures = _figures(yesterday, quota_before, policy) if yesterday is not None else None
        return decided(
            Action.HOLD, Rule.NO_SENDING, "nothing sent yesterday: warmup counts sending days only", position, figures
        )

    figures = _figures(yesterday, quota_before, policy)
    notes = _sample_notes(figures, policy)
    sent_position = replace(position, last_sending_day=yesterday.day)

    step_backs = _step_back_findings(figures, policy)
    holds = _hold_findings(figures, policy)
    if step_backs:
        after = step_back(schedule, sent_position)
        first, *others = step_backs
        notes += [other.text for other in [*others, *holds]]
        return decided(
            Action.STEP_BACK,
            first.rule,
            f"{first.text}: back to step {after.step_index + 1} at {daily_quota(schedule, after)}/day",
            after,
            figures,
            notes,
        )
    if holds:
        first, *others = holds
        notes += [other.text for other in others]
        return decided(
            Action.HOLD, first.rule, f"{first.text}: hold at {quota_before}/day", sent_position, figures, notes
        )
    after = advance(schedule, sent_position)
    quota_after = daily_quota(schedule, after)
    if after.step_index != position.step_index:
        progress = f"step {after.step_index + 1} reached: {quota_after}/day"
    else:
        progress = f"sending day {after.sending_day_in_step} of step {after.step_index + 1} at {quota_after}/day"
    return decided(Action.ADVANCE, Rule.HEALTHY, f"healthy day: {progress}", after, figures, notes)


def apply_decision(status: IpStatus, schedule: WarmupSchedule, decision: Decision) -> IpStatus:
    """The IP's status after `decision`: new position; WARMING/WARM follows the step, other states stay."""
    if status.position != decision.position_before:
        raise ValueError("the decision was taken on another position than the IP's current one")
    state = sending_state(schedule, decision.position_after) if status.state in SENDING_STATES else status.state
    return replace(status, position=decision.position_after, state=state)
