"""THE place where an IP's warmup day is decided.

Public API:
    Action        -- ADVANCE, HOLD, STEP_BACK, RESTART
    Rule          -- which rule decided (stable names, kept in the IP's history)
    DayFigures    -- the figures a decision used (yesterday, the window, per provider, listings); `.to_record()`
    WindowFigures, ProviderDayFigures
    Decision      -- action + rule + reason + figures + position, provider holds and window start before/after +
                     the policy values used; `.to_record()` for storage
    decide_day(*, today, schedule, position, yesterday, earlier=(), window_start=None, provider_holds=None,
               policy=DEFAULT_HEALTH_POLICY, shares=DEFAULT_PROVIDER_SHARES,
               feedback_loops=DEFAULT_FEEDBACK_LOOPS) -> Decision
    apply_decision(status, schedule, decision) -> IpStatus

`decide_day` runs once per IP per tenant-local day, at the tenant's decision hour (`health.decision_hour`, 06:00
by default: the night's asynchronous bounces and complaints are in), for every IP that is not RETIRED (paused
and standby IPs too, so the idle rule sees them). `yesterday` is the report of the local day before `today`,
or None when nothing was recorded; `earlier` are the revised reports of the days before it (oldest first). The
rules, first match wins:

 1. IDLE_RESTART        no mail for `idle_rewarm_days` (30) days -> back to step 0, day 1. Providers forget an
                        IP's reputation after about a month (SendGrid re-warms after 30 idle days); restarting
                        from the first step is the safe choice, and it is idempotent while the IP stays idle.
 2. NO_SENDING          nothing sent yesterday -> hold: warmup counts sending days, not calendar days.
 3. BOUNCE_STEP_BACK    bounce rate >= 5 %, yesterday or over the window      -> one step down, day 1 of that step.
    COMPLAINT_STEP_BACK complaint rate >= 0.3 %, yesterday or over the window, all feedback-loop providers
                        together or any one of them (`complaints`)           -> one step down, day 1 of that step.
 4. BLOCKLISTED         a listing that put the IP in standby               -> hold (it sends nothing anyway).
    LISTING_HOLD        a listing whose action is HOLD_WARMUP (`listings`)  -> hold: send at this step, no climb.
    BOUNCE_HOLD         bounce rate >= 2 %, yesterday or over the window      -> hold.
    COMPLAINT_HOLD      complaint rate >= 0.1 %, all feedback-loop providers together, yesterday or over the
                        window                                              -> hold.
    DELIVERED_SHARE     delivered < 90 % of what the IP could send          -> hold.
 5. HEALTHY             everything passed                                    -> advance: one more sending day.

Beside the rule, every day with mail judges each provider's throttling on its own (`throttling`): a provider
that defers the IP for its reputation has its cap held or stepped back, and released step by step once it
stops; the IP itself is not held for it. Listings that only alert are noted, never decide.

Rates count only on enough mail (`health`): a bounce rate on `min_sample` (100) sent; a complaint rate on
`min_sample` delivered to feedback-loop providers and `min_complaints` (5) complaints. Below that a rate is shown,
noted, and treated as healthy (2 bounces out of 20 change nothing; 1 complaint in 199 is not a step back).

The window: the bounce and complaint gates read yesterday alone (a spike) and the last `window_days` (7) days
of revised totals (what came late or accumulates), never reaching back before `window_start`. A step back or a
restart moves `window_start` to the decision's day, so the figures one step back acted on never punish twice.

What the IP could send (the delivered-share basis): its target, unless provider caps bound it -- when the IP was
given at least its cap for some provider, it could send at most that cap for each provider at its cap plus what
it was given for the others. At the 200 step a list of only Gmail, Microsoft and Yahoo recipients fills the
caps at 80 + 60 + 40 = 180, a Gmail-only list at 80: the share is taken over 180 or 80, not 200, so a clean day
advances. When no cap binds, a shortfall is a lack of volume and the target stays the basis: climbing to a
volume the IP never carried is exactly what warmup exists to prevent. Tiny-step relief: when the target itself
is below `min_sample` (the default first step, 50/day), the share is taken over what was sent (capped at the
target), so a tenant with little mail is not stuck on step 0 forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from ippool.domain.complaints import ComplaintFigures, ComplaintRate, complaint_figures
from ippool.domain.health import DEFAULT_HEALTH_POLICY, DayCounts, DayReport, HealthPolicy
from ippool.domain.lifecycle import SENDING_STATES, IpStatus, sending_state
from ippool.domain.listings import ActiveListing
from ippool.domain.providers import (
    DEFAULT_FEEDBACK_LOOPS,
    DEFAULT_PROVIDER_SHARES,
    FeedbackLoops,
    ProviderGroup,
    ProviderShares,
    provider_cap,
)
from ippool.domain.schedule import WarmupPosition, WarmupSchedule, advance, daily_quota, restart, step_back
from ippool.domain.throttling import CapChange, decide_provider_holds, throttle_rate


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
    LISTING_HOLD = "LISTING_HOLD"
    BOUNCE_HOLD = "BOUNCE_HOLD"
    COMPLAINT_HOLD = "COMPLAINT_HOLD"
    DELIVERED_SHARE = "DELIVERED_SHARE"
    HEALTHY = "HEALTHY"


def _record(value: Any) -> Any:
    """JSON-ready: dataclasses as objects, dates as YYYY-MM-DD, tuples as lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {item.name: _record(getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_record(item) for item in value]
    return value


@dataclass(frozen=True)
class WindowFigures:
    """The window's totals as revised by the decision time (late bounces and complaints land on their day)."""

    first_day: date
    last_day: date
    days: int
    sent: int
    delivered: int
    bounced: int
    bounce_rate: float | None
    bounce_rate_counted: bool
    feedback_loop_delivered: int
    feedback_loop_complained: int
    complaint_rate: float | None
    complaint_rate_counted: bool


@dataclass(frozen=True)
class ProviderDayFigures:
    """One provider group's part of yesterday, its throttling and complaints, and its cap before/after."""

    provider: str
    cap: int
    given: int
    sent: int
    delivered: int
    bounced: int
    complained: int
    deferred: int
    throttled: int
    attempts: int
    throttle_rate: float | None
    throttle_rate_counted: bool
    feedback_loop: bool
    complaint_rate: float | None = None
    complaint_rate_counted: bool = False
    window_delivered: int = 0
    window_complained: int = 0
    window_complaint_rate: float | None = None
    window_complaint_rate_counted: bool = False
    held_cap_before: int = 0
    """0: not held."""
    held_cap_after: int = 0


@dataclass(frozen=True)
class ListingFigure:
    zone: str
    severity: str
    action: str
    policy: str


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
    """Yesterday's complaints over deliveries, feedback-loop providers only; None when they got nothing."""
    complaint_rate_counted: bool
    delivered_share: float | None
    """delivered / delivered_share_basis; None when nothing was sent."""
    delivered_share_basis: int
    """What the IP could send: the target, less what provider caps kept it from (or what was sent, up to the
    target, under the tiny-step relief)."""
    blocklisted: bool
    """A listing stops (standby) or holds the warmup."""
    throttled_providers: tuple[str, ...]
    """Providers whose counted throttling rate reached the hold rate (their caps are held, not the IP)."""
    capped_providers: tuple[str, ...] = ()
    feedback_loop_delivered: int = 0
    feedback_loop_complained: int = 0
    ignored_complaints: int = 0
    window: WindowFigures | None = None
    by_provider: tuple[ProviderDayFigures, ...] = ()
    listings: tuple[ListingFigure, ...] = ()

    def to_record(self) -> dict[str, Any]:
        return _record(self)  # type: ignore[no-any-return]


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
    provider_holds_before: Mapping[ProviderGroup, int] = field(default_factory=dict)
    provider_holds_after: Mapping[ProviderGroup, int] = field(default_factory=dict)
    """Held caps per provider after the decision (a provider missing is not held)."""
    window_start_after: date | None = None
    """The first day later windows may read (moved to `day` by a step back or a restart)."""
    policy: Mapping[str, str] = field(default_factory=dict)
    """The tenant policy values the decision used, by field path."""

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
            "provider_holds_after": {group.value: cap for group, cap in self.provider_holds_after.items()},
            "window_start_after": self.window_start_after.isoformat() if self.window_start_after else None,
            "policy": dict(self.policy),
        }


def _pct(rate: float) -> str:
    return f"{rate:.2%}"


def _policy_values(
    policy: HealthPolicy, shares: ProviderShares, loops: FeedbackLoops, report: DayReport | None
) -> dict[str, str]:
    """The policy values the day's rules read, as text by field path."""
    values = {f"health.{item.name}": str(getattr(policy, item.name)) for item in fields(policy)}
    del values["health.standby_cooldown"]  # a lifecycle setting: the release from standby names it
    values["feedback_loops"] = ",".join(group.value for group in loops.groups) or "none"
    if report is not None:
        for group in report.by_provider:
            values[f"provider_shares.{group.field_name}"] = str(shares.share(group))
        for listing in (*report.listings.standby, *report.listings.holds, *report.listings.alerts):
            if listing.policy_field.startswith("listings."):
                values[listing.policy_field] = listing.action.value
    return values


def _caps(target: int, shares: ProviderShares, holds: Mapping[ProviderGroup, int]) -> dict[ProviderGroup, int]:
    return {group: provider_cap(target, shares, group, holds.get(group)) for group in ProviderGroup}


def _delivered_share_basis(
    report: DayReport, target: int, caps: Mapping[ProviderGroup, int], policy: HealthPolicy
) -> tuple[int, tuple[str, ...]]:
    """What the IP could send yesterday, and the providers whose caps bound it (module docstring)."""
    if target < policy.min_sample:
        return min(target, report.sent), ()
    given = {group: report.given_to(group) for group in ProviderGroup}
    given = {group: count for group, count in given.items() if count > 0}
    bound = tuple(group.value for group, count in given.items() if count >= caps[group])
    if not bound:
        return target, ()
    could = sum(min(count, caps[group]) for group, count in given.items())
    return (target, ()) if could >= target else (could, bound)


def _window_reports(
    yesterday: DayReport, earlier: Sequence[DayReport], window_start: date | None, policy: HealthPolicy
) -> list[DayReport]:
    first = yesterday.day - timedelta(days=policy.window_days - 1)
    if window_start is not None:
        first = max(first, window_start)
    for report in earlier:
        if report.day >= yesterday.day:
            raise ValueError(f"the report for {report.day} is not before yesterday ({yesterday.day})")
    days = sorted((r for r in earlier if r.day >= first), key=lambda r: r.day)
    return [*days, yesterday]


def _window_figures(days: Sequence[DayReport], complaints: ComplaintFigures, policy: HealthPolicy) -> WindowFigures:
    sent = sum(r.sent for r in days)
    bounced = sum(r.bounced for r in days)
    return WindowFigures(
        first_day=days[0].day,
        last_day=days[-1].day,
        days=(days[-1].day - days[0].day).days + 1,
        sent=sent,
        delivered=sum(r.delivered for r in days),
        bounced=bounced,
        bounce_rate=bounced / sent if sent else None,
        bounce_rate_counted=sent >= policy.min_sample,
        feedback_loop_delivered=complaints.window.delivered,
        feedback_loop_complained=complaints.window.complained,
        complaint_rate=complaints.window.rate,
        complaint_rate_counted=complaints.window.counted,
    )


def _listing_figure(listing: ActiveListing) -> ListingFigure:
    return ListingFigure(listing.zone, listing.severity.value, listing.action.value, listing.policy_field)


@dataclass(frozen=True)
class _Day:
    """Everything measured about yesterday, before any rule looks at it."""

    figures: DayFigures
    complaints: ComplaintFigures
    holds_after: dict[ProviderGroup, int]
    cap_changes: tuple[CapChange, ...]


def _measure(
    *,
    report: DayReport,
    window: Sequence[DayReport],
    target: int,
    holds: Mapping[ProviderGroup, int],
    holds_after: dict[ProviderGroup, int],
    cap_changes: tuple[CapChange, ...],
    policy: HealthPolicy,
    shares: ProviderShares,
    loops: FeedbackLoops,
) -> _Day:
    complaints = complaint_figures(yesterday=report, window=window, feedback_loops=loops, policy=policy)
    caps = _caps(target, shares, holds)
    basis, capped = _delivered_share_basis(report, target, caps, policy)
    throttled = tuple(
        change.provider.value
        for change in cap_changes
        if change.rate.counted and change.rate.rate is not None and change.rate.rate >= policy.throttle_hold_rate
    )
    by_provider = []
    for group in ProviderGroup:
        counts = report.by_provider.get(group)
        given = report.given_to(group)
        if counts is None and not given:
            continue
        counts = counts or DayCounts()
        rate = throttle_rate(provider=group, counts=counts, policy=policy)
        pair = complaints.by_provider.get(group)
        by_provider.append(
            ProviderDayFigures(
                provider=group.value,
                cap=caps[group],
                given=given,
                sent=counts.sent,
                delivered=counts.delivered,
                bounced=counts.bounced,
                complained=counts.complained,
                deferred=counts.deferred,
                throttled=counts.throttled,
                attempts=rate.attempts,
                throttle_rate=rate.rate,
                throttle_rate_counted=rate.counted,
                feedback_loop=loops.covers(group),
                complaint_rate=pair[0].rate if pair else None,
                complaint_rate_counted=pair[0].counted if pair else False,
                window_delivered=pair[1].delivered if pair else 0,
                window_complained=pair[1].complained if pair else 0,
                window_complaint_rate=pair[1].rate if pair else None,
                window_complaint_rate_counted=pair[1].counted if pair else False,
                held_cap_before=holds.get(group, 0),
                held_cap_after=holds_after.get(group, 0),
            )
        )
    listings = report.listings
    figures = DayFigures(
        day=report.day,
        target=target,
        sent=report.sent,
        delivered=report.delivered,
        bounced=report.bounced,
        complained=report.complained,
        bounce_rate=report.bounced / report.sent if report.sent else None,
        bounce_rate_counted=report.sent >= policy.min_sample,
        complaint_rate=complaints.yesterday.rate,
        complaint_rate_counted=complaints.yesterday.counted,
        delivered_share=report.delivered / basis if basis else None,
        delivered_share_basis=basis,
        blocklisted=listings.stops_or_holds,
        throttled_providers=throttled,
        capped_providers=capped,
        feedback_loop_delivered=complaints.yesterday.delivered,
        feedback_loop_complained=complaints.yesterday.complained,
        ignored_complaints=complaints.ignored_complaints,
        window=_window_figures(window, complaints, policy),
        by_provider=tuple(by_provider),
        listings=tuple(_listing_figure(item) for item in (*listings.standby, *listings.holds, *listings.alerts)),
    )
    return _Day(figures, complaints, holds_after, cap_changes)


@dataclass(frozen=True)
class _Finding:
    """A failed gate: its rule and the sentence that explains it with figures."""

    rule: Rule
    text: str


def _bounce_rates(f: DayFigures) -> list[tuple[float, str]]:
    """The bounce rates that count, with their description, highest first."""
    found = []
    if f.bounce_rate_counted and f.bounce_rate is not None:
        found.append((f.bounce_rate, f"bounce rate {_pct(f.bounce_rate)} ({f.bounced} of {f.sent} sent on {f.day})"))
    w = f.window
    if w is not None and w.days > 1 and w.bounce_rate_counted and w.bounce_rate is not None:
        found.append(
            (
                w.bounce_rate,
                f"bounce rate {_pct(w.bounce_rate)} ({w.bounced} of {w.sent} sent over {w.first_day}..{w.last_day})",
            )
        )
    return sorted(found, key=lambda item: -item[0])


def _complaint_rates(complaints: ComplaintFigures, *, per_provider: bool) -> list[ComplaintRate]:
    """The counted rates, highest first: all loop providers together, and each one alone when `per_provider`."""
    return [
        rate
        for rate in complaints.counted()
        if (per_provider or rate.provider is None) and (rate.scope == "yesterday" or rate.first_day != rate.last_day)
    ]


def _step_back_findings(day: _Day, policy: HealthPolicy) -> list[_Finding]:
    found: list[_Finding] = []
    bounces = _bounce_rates(day.figures)
    if bounces and bounces[0][0] >= policy.step_back_bounce_rate:
        found.append(
            _Finding(Rule.BOUNCE_STEP_BACK, f"{bounces[0][1]} >= step-back limit {_pct(policy.step_back_bounce_rate)}")
        )
    complaints = _complaint_rates(day.complaints, per_provider=True)
    if complaints and (complaints[0].rate or 0.0) >= policy.step_back_complaint_rate:
        found.append(
            _Finding(
                Rule.COMPLAINT_STEP_BACK,
                f"{complaints[0].describe()} >= step-back limit {_pct(policy.step_back_complaint_rate)}",
            )
        )
    return found


def _hold_findings(day: _Day, report: DayReport, policy: HealthPolicy) -> list[_Finding]:
    f = day.figures
    found: list[_Finding] = []
    listings = report.listings
    if listings.standby:
        zones = ", ".join(item.describe() for item in listings.standby)
        found.append(_Finding(Rule.BLOCKLISTED, f"in standby for a listing: {zones}"))
    if listings.holds:
        zones = ", ".join(item.describe() for item in listings.holds)
        found.append(_Finding(Rule.LISTING_HOLD, f"listed, warmup held: {zones}"))
    bounces = _bounce_rates(f)
    if bounces and bounces[0][0] >= policy.max_bounce_rate_to_advance:
        found.append(
            _Finding(Rule.BOUNCE_HOLD, f"{bounces[0][1]} >= advance limit {_pct(policy.max_bounce_rate_to_advance)}")
        )
    complaints = _complaint_rates(day.complaints, per_provider=False)
    if complaints and (complaints[0].rate or 0.0) >= policy.max_complaint_rate_to_advance:
        found.append(
            _Finding(
                Rule.COMPLAINT_HOLD,
                f"{complaints[0].describe()} >= advance limit {_pct(policy.max_complaint_rate_to_advance)}",
            )
        )
    if f.delivered_share is not None and f.delivered_share < policy.min_delivered_share:
        found.append(
            _Finding(
                Rule.DELIVERED_SHARE,
                f"delivered {f.delivered} of {f.delivered_share_basis} "
                f"({_pct(f.delivered_share)}) < {_pct(policy.min_delivered_share)} of what it could send",
            )
        )
    return found


def _notes(day: _Day, report: DayReport, policy: HealthPolicy) -> list[str]:
    """Say out loud what was seen but did not decide: rates on too little mail, caps, alerts, the window."""
    f = day.figures
    notes: list[str] = []
    if f.bounce_rate is not None and not f.bounce_rate_counted:
        notes.append(f"bounce rate {_pct(f.bounce_rate)} rests on {f.sent} sent (< {policy.min_sample}): not counted")
    c = day.complaints.yesterday
    if c.rate is not None and c.complained and not c.counted:
        notes.append(
            f"{c.describe()} rests on fewer than {policy.min_sample} deliveries or {policy.min_complaints} "
            "complaints: not counted"
        )
    if f.ignored_complaints:
        notes.append(f"{f.ignored_complaints} complaint(s) from providers outside the feedback loops: shown, not rated")
    if f.target < policy.min_sample and f.delivered_share_basis != f.target:
        notes.append(
            f"target {f.target} is below the minimum sample {policy.min_sample}: delivered share "
            f"taken over {f.delivered_share_basis} sent"
        )
    elif f.capped_providers:
        notes.append(
            f"target {f.target} limited by the provider caps to {f.delivered_share_basis} "
            f"({', '.join(f.capped_providers)} at their caps): delivered share taken over that"
        )
    for provider in f.by_provider:
        if provider.throttled and not provider.throttle_rate_counted and provider.throttle_rate is not None:
            notes.append(
                f"{provider.provider} throttling rate {_pct(provider.throttle_rate)} rests on {provider.attempts} "
                f"attempts (< {policy.throttle_min_attempts}): not counted"
            )
    notes += [change.reason for change in day.cap_changes]
    for listing in report.listings.alerts:
        notes.append(f"listed by {listing.describe()}: alert only, the warmup goes on")
    w = f.window
    if w is not None and w.days > 1:
        notes.append(
            f"bounce and complaint gates also read {w.first_day}..{w.last_day} as revised at the decision "
            "(late bounces and complaints land on their message's day)"
        )
    return notes


def decide_day(
    *,
    today: date,
    schedule: WarmupSchedule,
    position: WarmupPosition,
    yesterday: DayReport | None,
    earlier: Sequence[DayReport] = (),
    window_start: date | None = None,
    provider_holds: Mapping[ProviderGroup, int] | None = None,
    policy: HealthPolicy = DEFAULT_HEALTH_POLICY,
    shares: ProviderShares = DEFAULT_PROVIDER_SHARES,
    feedback_loops: FeedbackLoops = DEFAULT_FEEDBACK_LOOPS,
) -> Decision:
    """Decide today's warmup position from yesterday's results and the window (see the module docstring)."""
    if yesterday is not None and yesterday.day != today - timedelta(days=1):
        raise ValueError(f"the report for {yesterday.day} cannot decide {today}: it must be the day before")
    quota_before = daily_quota(schedule, position)
    holds = dict(provider_holds or {})
    used_policy = _policy_values(policy, shares, feedback_loops, yesterday)

    def decided(
        action: Action,
        rule: Rule,
        reason: str,
        after: WarmupPosition,
        figures: DayFigures | None = None,
        notes: list[str] | None = None,
        holds_after: dict[ProviderGroup, int] | None = None,
        window_from: date | None = window_start,
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
            provider_holds_before=holds,
            provider_holds_after=holds if holds_after is None else holds_after,
            window_start_after=window_from,
            policy=used_policy,
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
                holds_after={},
                window_from=today,
            )
        figures = None
        if yesterday is not None:
            window = _window_reports(yesterday, earlier, window_start, policy)
            figures = _measure(
                report=yesterday,
                window=window,
                target=quota_before,
                holds=holds,
                holds_after=holds,
                cap_changes=(),
                policy=policy,
                shares=shares,
                loops=feedback_loops,
            ).figures
        return decided(
            Action.HOLD, Rule.NO_SENDING, "nothing sent yesterday: warmup counts sending days only", position, figures
        )

    window = _window_reports(yesterday, earlier, window_start, policy)
    sent_position = replace(position, last_sending_day=yesterday.day)

    def measured(position_after: WarmupPosition) -> _Day:
        holds_after, changes = decide_provider_holds(
            schedule=schedule,
            position=position,
            position_after=position_after,
            holds=holds,
            yesterday=yesterday,
            shares=shares,
            policy=policy,
        )
        return _measure(
            report=yesterday,
            window=window,
            target=quota_before,
            holds=holds,
            holds_after=holds_after,
            cap_changes=changes,
            policy=policy,
            shares=shares,
            loops=feedback_loops,
        )

    # The gates do not depend on the provider holds; the holds' release compares with the day's new quota.
    day = measured(sent_position)
    step_backs = _step_back_findings(day, policy)
    holds_found = _hold_findings(day, yesterday, policy)
    if step_backs:
        after = step_back(schedule, sent_position)
        day = measured(after)
        first, *others = step_backs
        notes = [other.text for other in [*others, *holds_found]] + _notes(day, yesterday, policy)
        return decided(
            Action.STEP_BACK,
            first.rule,
            f"{first.text}: back to step {after.step_index + 1} at {daily_quota(schedule, after)}/day",
            after,
            day.figures,
            notes,
            day.holds_after,
            window_from=today,
        )
    if holds_found:
        first, *others = holds_found
        notes = [other.text for other in others] + _notes(day, yesterday, policy)
        return decided(
            Action.HOLD,
            first.rule,
            f"{first.text}: hold at {quota_before}/day",
            sent_position,
            day.figures,
            notes,
            day.holds_after,
        )
    after = advance(schedule, sent_position)
    day = measured(after)
    quota_after = daily_quota(schedule, after)
    if after.step_index != position.step_index:
        progress = f"step {after.step_index + 1} reached: {quota_after}/day"
    else:
        progress = f"sending day {after.sending_day_in_step} of step {after.step_index + 1} at {quota_after}/day"
    return decided(
        Action.ADVANCE,
        Rule.HEALTHY,
        f"healthy day: {progress}",
        after,
        day.figures,
        _notes(day, yesterday, policy),
        day.holds_after,
    )


def apply_decision(status: IpStatus, schedule: WarmupSchedule, decision: Decision) -> IpStatus:
    """The IP's status after `decision`: new position; WARMING/WARM follows the step, other states stay."""
    if status.position != decision.position_before:
        raise ValueError("the decision was taken on another position than the IP's current one")
    state = sending_state(schedule, decision.position_after) if status.state in SENDING_STATES else status.state
    return replace(status, position=decision.position_after, state=state)
