"""What happens to the simulated fleet besides an ordinary day: listings, a bad-bounce week, provider throttling.

Public API:
    ScenarioKind                     -- LISTING, LOW_LISTING, BAD_WEEK, GMAIL_THROTTLING (the CLI's names)
    Listing(kind, ip, zone_key, code, listed_day, delisted_day, listed_at=10:40, delisted_at=10:20)
    BadBounceWeek(ips, first_day, days=7, bounce_rate=0.06)
    ProviderThrottling(ips, first_day, days=4, rate=0.2)   -- Gmail `421-4.7.28` on that share of attempts
    Scenario(listings=(), bad_weeks=(), throttling=())
        .listed_code(ip, zone_key, at_day, at_time) -> str | None, .bounce_rate(ip, day) -> float | None,
        .throttle_rate(ip, day) -> float, .describe(addresses) -> list[str], .kinds
    default_scenario(*, days, ips, kinds=ALL_KINDS) -> Scenario

Days are numbered from 1 (the IPs are registered on day 1); IPs by their index in the fleet (0 is the first).
Times of day are the tenant's local wall-clock times.

The default scenario, placed by the length of the run so a short run still shows each of them (42 days, 10 IPs):
  listing           the third IP on Spamhaus SBL (ZEN 127.0.0.2, CRITICAL: standby) on day 17 at 10:40, delisted
                    three days later; the next 4-hourly scan sees each change
  low-listing       the second IP on Mailspike L1 (127.0.0.14, LOW: alert only) on day 10, delisted day 14
  bad-week          the last two IPs (the second one below 5 IPs) bounce 6 % of what they send for 7 days from
                    day 23 (a bought or stale segment of the list)
  gmail-throttling  the first IP (and the sixth, from 8 IPs) gets Gmail's `421-4.7.28` on a fifth of its Gmail
                    attempts for 4 days from day 19
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import time
from enum import StrEnum

from reputation.domain.zones import DEFAULT_CATALOGUE


class ScenarioKind(StrEnum):
    LISTING = "listing"
    LOW_LISTING = "low-listing"
    BAD_WEEK = "bad-week"
    GMAIL_THROTTLING = "gmail-throttling"


ALL_KINDS = frozenset(ScenarioKind)
GMAIL_THROTTLING_REPLY = (
    "smtp;421-4.7.28 [{address}] Our system has detected an unusual rate of unsolicited mail originating from your "
    "IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited."
)


@dataclass(frozen=True)
class Listing:
    """A blocklist lists one IP from `listed_day` at `listed_at` until `delisted_day` at `delisted_at`."""

    kind: ScenarioKind
    ip: int
    zone_key: str
    code: str
    """The A record the zone answers while the IP is listed (its meaning and severity: the zone catalogue's)."""
    listed_day: int
    delisted_day: int
    listed_at: time = time(10, 40)
    delisted_at: time = time(10, 20)

    def active(self, day: int, at: time) -> bool:
        return (self.listed_day, self.listed_at) <= (day, at) < (self.delisted_day, self.delisted_at)

    def describe(self, addresses: Sequence[str]) -> str:
        zone = DEFAULT_CATALOGUE.get(self.zone_key)
        assert zone is not None, self.zone_key
        code = zone.codes[self.code]
        return (
            f"{addresses[self.ip]} listed on {zone.name} ({code.meaning}; {code.severity.name}) on day "
            f"{self.listed_day} at {self.listed_at:%H:%M}, delisted on day {self.delisted_day} at "
            f"{self.delisted_at:%H:%M}"
        )


@dataclass(frozen=True)
class BadBounceWeek:
    """`ips` bounce `bounce_rate` of what they send on `days` days from `first_day`."""

    ips: tuple[int, ...]
    first_day: int
    days: int = 7
    bounce_rate: float = 0.06

    @property
    def last_day(self) -> int:
        return self.first_day + self.days - 1

    def describe(self, addresses: Sequence[str]) -> str:
        who = ", ".join(addresses[ip] for ip in self.ips)
        return f"{who} bounce {self.bounce_rate:.0%} of their mail on days {self.first_day}-{self.last_day}"


@dataclass(frozen=True)
class ProviderThrottling:
    """Gmail defers `rate` of the attempts of `ips` with `421-4.7.28` on `days` days from `first_day`."""

    ips: tuple[int, ...]
    first_day: int
    days: int = 4
    rate: float = 0.2

    @property
    def last_day(self) -> int:
        return self.first_day + self.days - 1

    def describe(self, addresses: Sequence[str]) -> str:
        who = ", ".join(addresses[ip] for ip in self.ips)
        return f"Gmail defers {self.rate:.0%} of {who}'s attempts (421-4.7.28) on days {self.first_day}-{self.last_day}"


@dataclass(frozen=True)
class Scenario:
    listings: tuple[Listing, ...] = ()
    bad_weeks: tuple[BadBounceWeek, ...] = ()
    throttling: tuple[ProviderThrottling, ...] = ()

    @property
    def kinds(self) -> frozenset[ScenarioKind]:
        found = {listing.kind for listing in self.listings}
        if self.bad_weeks:
            found.add(ScenarioKind.BAD_WEEK)
        if self.throttling:
            found.add(ScenarioKind.GMAIL_THROTTLING)
        return frozenset(found)

    def listed_code(self, ip: int, zone_key: str, day: int, at: time) -> str | None:
        """The answer `zone_key` gives for the IP at that moment (None: NXDOMAIN)."""
        for listing in self.listings:
            if listing.ip == ip and listing.zone_key == zone_key and listing.active(day, at):
                return listing.code
        return None

    def bounce_rate(self, ip: int, day: int) -> float | None:
        """The bounce rate a bad week imposes on the IP that day (None: an ordinary day)."""
        for week in self.bad_weeks:
            if ip in week.ips and week.first_day <= day <= week.last_day:
                return week.bounce_rate
        return None

    def throttle_rate(self, ip: int, day: int) -> float:
        """The share of the IP's Gmail attempts deferred with 421-4.7.28 that day."""
        return max(
            (t.rate for t in self.throttling if ip in t.ips and t.first_day <= day <= t.last_day),
            default=0.0,
        )

    def describe(self, addresses: Sequence[str]) -> list[str]:
        parts: Iterable[Listing | BadBounceWeek | ProviderThrottling] = (
            *self.listings,
            *self.bad_weeks,
            *self.throttling,
        )
        return [part.describe(addresses) for part in parts]


def _day(days: int, share: float, last_room: int) -> int:
    """A day at `share` of the run, leaving `last_room` days after it when the run allows."""
    return max(2, min(round(days * share), days - last_room))


def default_scenario(*, days: int, ips: int, kinds: Iterable[ScenarioKind] = ALL_KINDS) -> Scenario:
    """The module's default scenario for a run of `days` days and `ips` IPs, with only `kinds` in it."""
    wanted = frozenset(kinds)
    listings: list[Listing] = []
    if ScenarioKind.LOW_LISTING in wanted:
        first = _day(days, 0.24, 6)
        listings.append(Listing(ScenarioKind.LOW_LISTING, 1 % ips, "mailspike", "127.0.0.14", first, first + 4))
    if ScenarioKind.LISTING in wanted:
        first = _day(days, 0.4, 6)
        listings.append(Listing(ScenarioKind.LISTING, 2 % ips, "spamhaus-zen", "127.0.0.2", first, first + 3))
    bad_weeks: tuple[BadBounceWeek, ...] = ()
    if ScenarioKind.BAD_WEEK in wanted:
        bad = (ips - 2, ips - 1) if ips >= 5 else (1 % ips,)
        bad_weeks = (BadBounceWeek(bad, _day(days, 0.55, 9)),)
    throttling: tuple[ProviderThrottling, ...] = ()
    if ScenarioKind.GMAIL_THROTTLING in wanted:
        throttled = (0, 5) if ips >= 8 else (0,)
        throttling = (ProviderThrottling(throttled, _day(days, 0.45, 6)),)
    # A run too short for an item leaves it out rather than announce what never happens.
    return Scenario(
        tuple(item for item in listings if item.listed_day <= days),
        tuple(item for item in bad_weeks if item.first_day <= days),
        tuple(item for item in throttling if item.first_day <= days),
    )
