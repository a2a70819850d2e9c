"""THE place where an IP's complaint rate is measured: over feedback-loop providers only, per provider and all
together, for yesterday alone and over the rolling window, each counted only on enough mail and complaints.

Public API:
    ComplaintRate(scope, provider, first_day, last_day, delivered, complained, rate, counted)
    ComplaintFigures(yesterday, window, by_provider, ignored_complaints)   -- `.counted()`: the rates that count
    complaint_figures(*, yesterday, window, feedback_loops, policy) -> ComplaintFigures

Why this way:
- Only feedback-loop providers (`providers.FeedbackLoops`) can tell us about a complaint, so only their deliveries
  are the denominator: Gmail and iCloud send no per-message complaints, and a Gmail-heavy list must not look
  cleaner than it is because Gmail's deliveries dilute the rate. A complaint recorded for a provider outside the
  loops (a Signal Spam CSV for Free, say) is shown in `ignored_complaints` and rates nothing.
- All loop providers together for both limits, and each provider alone for the step back: 0.3 % is the limit
  each provider applies to what it sees (Yahoo's and Gmail's "never"), while 0.1 % is a whole sender's "stay
  below" (Gmail's). Holding on any one provider's 0.1 % would read many small samples every day and hold a clean
  IP by chance alone (`warmup` applies this).
- Yesterday alone catches a spike; the window (`window_days` of revised totals) catches what arrives late and
  what accumulates: complaints reach us hours or days after the mail, and land on the day of their message.
- A rate counts only when it rests on `min_sample` deliveries AND `min_complaints` (5) complaints. At the
  100-message minimum one complaint in 199 is 0.5 %: one person's click, not a verdict on the IP. Why five: a
  warming IP's per-provider samples are a few thousand deliveries a week, and a clean list (0.03 %) shows three
  complaints in 2 500 deliveries (0.12 %) in about one window in twenty-five -- with several providers, several
  IPs and a window sliding every day, that is a false hold or step back every few days; five happens in about one
  window in a thousand, so a 90-day simulated warmup of six IPs at 0.03 % does not trip, while a list at 0.5 %
  never gets warm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ippool.domain.health import DayReport, HealthPolicy
from ippool.domain.providers import FeedbackLoops, ProviderGroup

ALL_LOOPS = "all feedback-loop providers"


@dataclass(frozen=True)
class ComplaintRate:
    """One measured complaint rate and whether it counts."""

    scope: str
    """"yesterday" or "window"."""
    provider: ProviderGroup | None
    """None: every feedback-loop provider together."""
    first_day: date
    last_day: date
    delivered: int
    complained: int
    rate: float | None
    """complained / delivered; None when nothing was delivered."""
    counted: bool

    def describe(self) -> str:
        who = self.provider.value if self.provider else ALL_LOOPS
        days = f"on {self.last_day}" if self.first_day == self.last_day else f"over {self.first_day}..{self.last_day}"
        rate = f"{self.rate:.2%}" if self.rate is not None else "n/a"
        return f"complaint rate {rate} ({self.complained} of {self.delivered} delivered, {who}, {days})"


@dataclass(frozen=True)
class ComplaintFigures:
    yesterday: ComplaintRate
    """All loop providers together, yesterday."""
    window: ComplaintRate
    """All loop providers together, over the window."""
    by_provider: dict[ProviderGroup, tuple[ComplaintRate, ComplaintRate]]
    """Per loop provider that had mail in the window: (yesterday, window)."""
    ignored_complaints: int
    """Yesterday's complaints from providers outside the loops."""

    def counted(self) -> list[ComplaintRate]:
        """The rates that count, highest first (ties: all providers before one, yesterday before the window)."""
        found = [self.yesterday, self.window, *(rate for pair in self.by_provider.values() for rate in pair)]
        return sorted(
            (rate for rate in found if rate.counted and rate.rate is not None),
            key=lambda rate: (-(rate.rate or 0.0), rate.provider is not None, rate.scope != "yesterday"),
        )


def _rate(
    scope: str,
    provider: ProviderGroup | None,
    days: Sequence[DayReport],
    groups: Sequence[ProviderGroup],
    policy: HealthPolicy,
) -> ComplaintRate:
    delivered = complained = 0
    for report in days:
        for group in groups:
            counts = report.by_provider.get(group)
            if counts is not None:
                delivered += counts.delivered
                complained += counts.complained
    return ComplaintRate(
        scope=scope,
        provider=provider,
        first_day=days[0].day,
        last_day=days[-1].day,
        delivered=delivered,
        complained=complained,
        rate=complained / delivered if delivered else None,
        counted=delivered >= policy.min_sample and complained >= policy.min_complaints,
    )


def complaint_figures(
    *, yesterday: DayReport, window: Sequence[DayReport], feedback_loops: FeedbackLoops, policy: HealthPolicy
) -> ComplaintFigures:
    """The complaint rates of yesterday and of `window` (oldest first, ending with yesterday)."""
    days = list(window) or [yesterday]
    loops = feedback_loops.groups
    seen = {group for report in days for group in report.by_provider}
    by_provider = {
        group: (
            _rate("yesterday", group, [yesterday], [group], policy),
            _rate("window", group, days, [group], policy),
        )
        for group in loops
        if group in seen
    }
    ignored = sum(c.complained for group, c in yesterday.by_provider.items() if not feedback_loops.covers(group))
    return ComplaintFigures(
        yesterday=_rate("yesterday", None, [yesterday], loops, policy),
        window=_rate("window", None, days, loops, policy),
        by_provider=by_provider,
        ignored_complaints=ignored,
    )
