"""What the daily warmup decision looks at: the tenant's thresholds and the delivery reports of recent days.

Public API:
    HealthPolicy(...)      -- per-tenant thresholds with conservative defaults, validated on construction
    DEFAULT_HEALTH_POLICY
    DayCounts(sent, delivered, bounced, complained, throttled, deferred)   -- one provider group's day totals
    DayReport(day, sent, delivered, bounced, complained, by_provider={}, given={}, listings=NO_LISTINGS)
    DayReport.of(*, day, by_provider, given={}, listings=NO_LISTINGS)       -- totals summed from the groups

Rates, and when they count (the brief's 100-message minimum is `min_sample`):
    bounce rate     = bounced / sent                      counted only when sent >= min_sample
    complaint rate  = complained / delivered, over the feedback-loop providers only (`complaints`),
                      counted only when delivered >= min_sample AND complained >= min_complaints
    throttling rate = throttled / attempts, per provider (`throttling`), counted only when attempts >=
                      throttle_min_attempts
The complaint rate is taken over delivered mail, as mailbox providers (Gmail's 0.1 % / 0.3 %) define it. A rate
that does not count is still shown in the decision's figures, with a note.

The counters are not cross-checked against each other (delivered + bounced may exceed sent, complaints may
exceed delivered): accounting records of one day can belong to messages injected the day before, and
complaints arrive late. They only have to be whole numbers >= 0. A day's totals are replaced whenever the
accounting sends them again: late bounces and complaints land on the day of their message, so the window the
decision reads (`window_days`) holds revised figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from types import MappingProxyType

from ippool.domain.listings import NO_LISTINGS, ListingEffect
from ippool.domain.providers import ProviderGroup
from libs.errors import Violations

# Bounds that keep every date computed from a policy a real date (a cool-down added to an instant, an idle gap).
MAX_IDLE_REWARM_DAYS = 3650
MAX_COOLDOWN = timedelta(days=365)
MAX_WINDOW_DAYS = 31

_SHARES = (
    "min_delivered_share",
    "max_bounce_rate_to_advance",
    "max_complaint_rate_to_advance",
    "step_back_bounce_rate",
    "step_back_complaint_rate",
    "throttle_hold_rate",
    "throttle_step_back_rate",
)


def _whole(value: object, low: int, high: int | None = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)


@dataclass(frozen=True)
class HealthPolicy:
    """Health gates of the daily warmup decision; one per tenant.

    The fields are the gates: the tenant API, the stored policy and the update mask are derived from them.
    """

    min_delivered_share: float = 0.90
    """Advance only if the day delivered at least this share of what the IP could send (its target, less what
    the provider caps kept it from sending)."""
    max_bounce_rate_to_advance: float = 0.02
    """Advance only below this bounce rate; at or above it (and under the step-back limit) hold."""
    max_complaint_rate_to_advance: float = 0.001
    """Advance only below this complaint rate; at or above it (and under the step-back limit) hold."""
    step_back_bounce_rate: float = 0.05
    """At or above this bounce rate the IP goes back one step."""
    step_back_complaint_rate: float = 0.003
    """At or above this complaint rate the IP goes back one step."""
    min_sample: int = 100
    """A rate counts only when its denominator holds at least this many messages."""
    idle_rewarm_days: int = 30
    """An IP that has not sent for this many days starts its schedule again."""
    standby_cooldown: timedelta = timedelta(hours=24)
    """After the last delisting, a standby IP waits this long before it sends again."""
    min_complaints: int = 5
    """A complaint rate counts only when it rests on at least this many complaints: at the 100-message minimum,
    1 complaint in 199 delivered is 0.5 %, which is chance, not a verdict (see `complaints` for why five)."""
    window_days: int = 7
    """Days of revised totals (yesterday included) the bounce and complaint gates read besides yesterday alone."""
    decision_hour: int = 6
    """Local hour at which the day's decision is taken: the night's asynchronous bounces and complaints are in."""
    throttle_min_attempts: int = 50
    """A provider's throttling rate counts only from this many attempts (sent + deferred) in the day."""
    throttle_hold_rate: float = 0.10
    """At or above this throttling rate the provider's cap on the IP is held where it is."""
    throttle_step_back_rate: float = 0.30
    """At or above this throttling rate the provider's cap on the IP goes one schedule step down."""

    def __post_init__(self) -> None:
        problems = Violations()
        for name in _SHARES:
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                problems.add(name, "must be a share between 0 and 1 (0.02 means 2 %)")
        if not problems.items:
            for low, high in (
                ("max_bounce_rate_to_advance", "step_back_bounce_rate"),
                ("max_complaint_rate_to_advance", "step_back_complaint_rate"),
                ("throttle_hold_rate", "throttle_step_back_rate"),
            ):
                if getattr(self, low) > getattr(self, high):
                    problems.add(low, f"must not exceed {high}")
        for name in ("min_sample", "min_complaints", "throttle_min_attempts"):
            if not _whole(getattr(self, name), 1):
                problems.add(name, "must be a whole number >= 1")
        if not _whole(self.idle_rewarm_days, 1, MAX_IDLE_REWARM_DAYS):
            problems.add("idle_rewarm_days", f"must be a whole number of days from 1 to {MAX_IDLE_REWARM_DAYS}")
        if not _whole(self.window_days, 1, MAX_WINDOW_DAYS):
            problems.add("window_days", f"must be a whole number of days from 1 to {MAX_WINDOW_DAYS}")
        if not _whole(self.decision_hour, 0, 23):
            problems.add("decision_hour", "must be a whole hour from 0 to 23")
        if (
            not isinstance(self.standby_cooldown, timedelta)
            or not timedelta(0) <= self.standby_cooldown <= MAX_COOLDOWN
        ):
            problems.add("standby_cooldown", f"must be a duration from 0 to {MAX_COOLDOWN.days} days")
        problems.raise_if_any()


DEFAULT_HEALTH_POLICY = HealthPolicy()


@dataclass(frozen=True)
class DayCounts:
    """One IP's totals for one provider group and day (absolute: a later report replaces them)."""

    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    throttled: int = 0
    """Reputation-class deferrals (the provider slows or defers the IP for its volume or reputation)."""
    deferred: int = 0
    """Every deferral attempt, throttled ones included (0 when the caller does not say)."""

    @property
    def attempts(self) -> int:
        """What the throttling rate is taken over: outcomes plus deferrals (at least the throttled ones)."""
        return self.sent + max(self.deferred, self.throttled)


_COUNTERS = ("sent", "delivered", "bounced", "complained")


@dataclass(frozen=True)
class DayReport:
    """One IP's results for one local sending day, plus the listings active when deciding."""

    day: date
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    by_provider: Mapping[ProviderGroup, DayCounts] = field(default_factory=dict)
    """Per provider group. Left empty, the totals count as OTHER (figures not broken down by provider); given with
    all totals at 0, the totals are summed from it."""
    given: Mapping[ProviderGroup, int] = field(default_factory=dict)
    """What the IP was given per provider group that day: what it sent, or what allocations committed it to,
    whichever is more (`usage.Usage.by_provider`); a group missing here counts what it sent."""
    listings: ListingEffect = NO_LISTINGS
    """The listings active at decision time (live, not a figure of the day)."""

    def __post_init__(self) -> None:
        problems = Violations()
        for item in fields(self):
            if item.name in _COUNTERS:
                value = getattr(self, item.name)
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    problems.add(item.name, "must be a whole number >= 0")
        problems.raise_if_any()
        by_provider = dict(self.by_provider)
        totals = {name: getattr(self, name) for name in _COUNTERS}
        if not by_provider and any(totals.values()):
            by_provider = {ProviderGroup.OTHER: DayCounts(**totals)}
        elif by_provider and not any(totals.values()):
            for name in _COUNTERS:
                object.__setattr__(self, name, sum(getattr(c, name) for c in by_provider.values()))
        object.__setattr__(self, "by_provider", MappingProxyType(by_provider))
        object.__setattr__(self, "given", MappingProxyType(dict(self.given)))

    @classmethod
    def of(
        cls,
        *,
        day: date,
        by_provider: Mapping[ProviderGroup, DayCounts],
        given: Mapping[ProviderGroup, int] | None = None,
        listings: ListingEffect = NO_LISTINGS,
    ) -> DayReport:
        """The report of a day from its per-provider totals."""
        return cls(day=day, by_provider=by_provider, given=given or {}, listings=listings)

    def given_to(self, group: ProviderGroup) -> int:
        """What the IP was given for `group`: its allocation or what it sent, whichever is more."""
        counts = self.by_provider.get(group)
        return max(self.given.get(group, 0), counts.sent if counts else 0)
