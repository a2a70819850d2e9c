"""What the daily warmup decision looks at: the tenant's thresholds and one day's delivery report.

Public API:
    HealthPolicy(...)      -- per-tenant thresholds with conservative defaults, validated on construction
    DEFAULT_HEALTH_POLICY
    DayReport(day, sent, delivered, bounced, complained, blocklisted=False, throttled_providers=frozenset())

Rates, and when they count:
    bounce rate     = bounced / sent          counted only when sent      >= policy.min_sample
    complaint rate  = complained / delivered  counted only when delivered >= policy.min_sample
The complaint rate is taken over delivered mail, as mailbox providers (Gmail's 0.1 % / 0.3 %) define it.
A rate below the minimum sample is still shown in the decision's figures, with a note that it did not count.

The counters are not cross-checked against each other (delivered + bounced may exceed sent, complaints may
exceed delivered): accounting records of one day can belong to messages injected the day before, and
complaints arrive late. They only have to be whole numbers >= 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, timedelta

from ippool.domain.providers import ProviderGroup
from libs.errors import Violations

# Bounds that keep every date computed from a policy a real date (a cool-down added to an instant, an idle gap).
MAX_IDLE_REWARM_DAYS = 3650
MAX_COOLDOWN = timedelta(days=365)


@dataclass(frozen=True)
class HealthPolicy:
    """Health gates of the daily warmup decision; one per tenant.

    The fields are the gates: the tenant API, the stored policy and the update mask are derived from them.
    """

    min_delivered_share: float = 0.90
    """Advance only if the day delivered at least this share of its target."""
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

    def __post_init__(self) -> None:
        problems = Violations()
        for name in (
            "min_delivered_share",
            "max_bounce_rate_to_advance",
            "max_complaint_rate_to_advance",
            "step_back_bounce_rate",
            "step_back_complaint_rate",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                problems.add(name, "must be a share between 0 and 1 (0.02 means 2 %)")
        if not problems.items:
            if self.max_bounce_rate_to_advance > self.step_back_bounce_rate:
                problems.add("max_bounce_rate_to_advance", "must not exceed step_back_bounce_rate")
            if self.max_complaint_rate_to_advance > self.step_back_complaint_rate:
                problems.add("max_complaint_rate_to_advance", "must not exceed step_back_complaint_rate")
        if not isinstance(self.min_sample, int) or isinstance(self.min_sample, bool) or self.min_sample < 1:
            problems.add("min_sample", "must be a whole number >= 1")
        if (
            not isinstance(self.idle_rewarm_days, int)
            or isinstance(self.idle_rewarm_days, bool)
            or not 1 <= self.idle_rewarm_days <= MAX_IDLE_REWARM_DAYS
        ):
            problems.add("idle_rewarm_days", f"must be a whole number of days from 1 to {MAX_IDLE_REWARM_DAYS}")
        if (
            not isinstance(self.standby_cooldown, timedelta)
            or not timedelta(0) <= self.standby_cooldown <= MAX_COOLDOWN
        ):
            problems.add("standby_cooldown", f"must be a duration from 0 to {MAX_COOLDOWN.days} days")
        problems.raise_if_any()


DEFAULT_HEALTH_POLICY = HealthPolicy()


@dataclass(frozen=True)
class DayReport:
    """One IP's results for one local sending day, plus the live signals known when deciding."""

    day: date
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    blocklisted: bool = False
    """An active listing on any monitored zone (normally the IP is in STANDBY then)."""
    throttled_providers: frozenset[ProviderGroup] = field(default_factory=frozenset)
    """Providers that answered with rate-limit / reputation deferrals during the day."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "throttled_providers", frozenset(self.throttled_providers))
        problems = Violations()
        for item in fields(self):
            if item.name in ("sent", "delivered", "bounced", "complained"):
                value = getattr(self, item.name)
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    problems.add(item.name, "must be a whole number >= 0")
        problems.raise_if_any()
