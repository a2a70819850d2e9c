"""THE place where a blocklisting becomes an action on the IP: standby, hold the warmup, or alert only.

Public API:
    ListingSeverity        -- UNSPECIFIED, NONE, INFO, LOW, MEDIUM, HIGH, CRITICAL (the reputation catalogue's scale)
    ListingAction          -- STANDBY, HOLD_WARMUP, ALERT_ONLY (strongest first)
    ListingPolicy(critical=STANDBY, high=STANDBY, medium=HOLD_WARMUP, low=ALERT_ONLY)   -- one per tenant
    DEFAULT_LISTING_POLICY
    ActiveListing(zone, severity, action, policy_field)   -- a listing as stored, with the action it was given
    listing_action(*, severity, policy) -> (action, policy_field)   -- what a new listing does, and why
    stronger(a, b) -> bool                  -- whether action `a` does more than `b`
    ListingEffect(standby, holds, alerts), NO_LISTINGS
    effect(listings) -> ListingEffect       -- what the active listings mean together (standby? warmup held?)

Why per severity: lists differ. A Spamhaus SBL/XBL listing (CRITICAL) means the big providers refuse the IP:
stop it at once (STANDBY: no volume, one step lower, back after the delisting and a cool-down). A UCEPROTECT level 1
or PSBL listing (MEDIUM) costs little delivery but says something is wrong: keep the IP sending at the volume it
has proved, but do not climb (HOLD_WARMUP). A Mailspike L1 or a JunkEmailFilter "brown" code (LOW) is a warning
the receivers mostly ignore: record it and let the reputation service alert, the IP keeps warming (ALERT_ONLY).
Each severity's action is the tenant's choice (`listings.<severity>`).

Severities outside the policy: UNSPECIFIED (a listing recorded without one: older events, a RecordListing that
names none) is taken as CRITICAL, which is what every listing meant before severities; NONE and INFO are never
more than ALERT_ONLY.

A listing keeps the action it was given when it was seen: changing the policy applies to later listings. A zone
that lists again with a severity whose action is stronger is upgraded (e.g. LOW then HIGH: standby then); a
weaker one changes nothing. A delisting lifts only what that listing caused (`effect` of what remains): the
standby's cool-down starts only when no listing that put the IP in standby remains; the warmup hold ends when no
listing holds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from libs.errors import InvalidArgument, Violations


class ListingSeverity(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    NONE = "NONE"
    INFO = "INFO"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class ListingAction(StrEnum):
    """What a listing does, strongest first."""

    STANDBY = "STANDBY"
    HOLD_WARMUP = "HOLD_WARMUP"
    ALERT_ONLY = "ALERT_ONLY"


_STRENGTH = {ListingAction.STANDBY: 3, ListingAction.HOLD_WARMUP: 2, ListingAction.ALERT_ONLY: 1}


def stronger(a: ListingAction, b: ListingAction) -> bool:
    """Whether `a` does more to the IP than `b`."""
    return _STRENGTH[a] > _STRENGTH[b]


def _action(value: object, field_name: str) -> ListingAction:
    if isinstance(value, ListingAction):
        return value
    if isinstance(value, str):
        try:
            return ListingAction(value.strip().upper())
        except ValueError:
            pass
    raise InvalidArgument(field_name, f"must be one of {', '.join(ListingAction)}")


@dataclass(frozen=True)
class ListingPolicy:
    """The action of a listing per severity; one per tenant."""

    critical: ListingAction = ListingAction.STANDBY
    high: ListingAction = ListingAction.STANDBY
    medium: ListingAction = ListingAction.HOLD_WARMUP
    low: ListingAction = ListingAction.ALERT_ONLY

    def __post_init__(self) -> None:
        problems = Violations()
        for name in ("critical", "high", "medium", "low"):
            try:
                object.__setattr__(self, name, _action(getattr(self, name), name))
            except InvalidArgument as error:
                problems.items.extend(error.violations)
        problems.raise_if_any()


DEFAULT_LISTING_POLICY = ListingPolicy()

# The severity whose policy field decides, for the severities the policy has no field of.
_DECIDED_AS = {ListingSeverity.UNSPECIFIED: ListingSeverity.CRITICAL}
_AT_MOST_ALERT = frozenset({ListingSeverity.NONE, ListingSeverity.INFO})


def listing_action(*, severity: ListingSeverity, policy: ListingPolicy) -> tuple[ListingAction, str]:
    """The action a new listing of `severity` gets, and the policy field that chose it (e.g. "listings.medium")."""
    if severity in _AT_MOST_ALERT:
        return ListingAction.ALERT_ONLY, f"severity {severity}: never more than an alert"
    decided_as = _DECIDED_AS.get(severity, severity)
    name = decided_as.value.lower()
    return getattr(policy, name), f"listings.{name}"


@dataclass(frozen=True)
class ActiveListing:
    """A zone listing the IP now, with the action it was given."""

    zone: str
    severity: ListingSeverity
    action: ListingAction
    policy_field: str = ""
    """The policy field that chose the action when the listing was seen."""

    def describe(self) -> str:
        return f"{self.zone} ({self.severity}: {self.action})"


@dataclass(frozen=True)
class ListingEffect:
    """What the active listings mean together."""

    standby: tuple[ActiveListing, ...]
    """Listings that keep the IP in standby (its cool-down starts once none is left)."""
    holds: tuple[ActiveListing, ...]
    """Listings that hold the warmup (the IP sends at its step, does not advance)."""
    alerts: tuple[ActiveListing, ...]
    """Listings that only alert."""

    @property
    def stops_or_holds(self) -> bool:
        return bool(self.standby or self.holds)


def effect(listings: Iterable[ActiveListing]) -> ListingEffect:
    """Sort the active listings by what they do (each by the action it was given)."""
    ordered = sorted(listings, key=lambda item: item.zone)
    return ListingEffect(
        standby=tuple(item for item in ordered if item.action is ListingAction.STANDBY),
        holds=tuple(item for item in ordered if item.action is ListingAction.HOLD_WARMUP),
        alerts=tuple(item for item in ordered if item.action is ListingAction.ALERT_ONLY),
    )


NO_LISTINGS = effect(())
