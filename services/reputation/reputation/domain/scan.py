"""Scan results and the changes between them (newly listed, delisted).

A change is only ever derived from *definitive* answers (listed / not listed / whitelisted). An
answer we could not get (timeout, zone error, unhealthy zone, skipped) leaves what we believed
untouched: a resolver hiccup must neither delist an IP nor list it again afterwards. That is why
events should come from `apply_scan` over a persisted `ListingState` (exactly once per real change),
not from comparing the last two scans (`diff_scans` is that convenience, with its limit stated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from libs.errors import InvalidArgument
from reputation.domain.checks import CheckKind, CheckResult, Verdict
from reputation.domain.dnsbl import ListingStatus, ZoneHealth, ZoneResult
from reputation.domain.zones import CodeKind, Severity, ZoneKind


@dataclass(frozen=True)
class ScanResult:
    """One target (IP or domain) against a set of zones at one moment."""

    target: str
    kind: ZoneKind
    started_at: datetime
    finished_at: datetime
    results: tuple[ZoneResult, ...]
    zone_health: tuple[ZoneHealth, ...] = ()

    @property
    def listings(self) -> tuple[ZoneResult, ...]:
        return tuple(r for r in self.results if r.status is ListingStatus.LISTED)

    @property
    def is_listed(self) -> bool:
        return any(r.status is ListingStatus.LISTED for r in self.results)

    @property
    def undetermined(self) -> tuple[ZoneResult, ...]:
        """Zones that gave no verdict this time (unknown, zone error, skipped)."""
        return tuple(r for r in self.results if not r.status.is_definitive)

    @property
    def complete(self) -> bool:
        """Every zone answered definitively: a clean, complete result may be called clean."""
        return not self.undetermined

    @property
    def worst_severity(self) -> Severity:
        return max((r.severity for r in self.listings), default=Severity.NONE)

    def result_for(self, zone_key: str) -> ZoneResult | None:
        return next((r for r in self.results if r.zone_key == zone_key), None)


class ChangeKind(StrEnum):
    LISTED = "listed"
    DELISTED = "delisted"


@dataclass(frozen=True)
class ListingChange:
    """One event to publish: `target` became listed on / was removed from `zone_key`."""

    target: str
    zone_key: str
    zone_name: str
    kind: ChangeKind
    severity: Severity = Severity.NONE
    codes: tuple[str, ...] = ()
    meaning: str = ""
    reason: str = ""  # the list's TXT text
    observed_at: datetime | None = None

    @property
    def dedup_key(self) -> str:
        """Stable identity of this change, for idempotent publishing."""
        stamp = self.observed_at.isoformat() if self.observed_at else ""
        return f"{self.target}|{self.zone_key}|{self.kind.value}|{stamp}"


@dataclass(frozen=True)
class ListingState:
    """What we currently believe about one target: the zones that list it (last definitive answer).

    This is what a service persists per target; it changes only through `apply_scan`.
    """

    target: str
    listed: Mapping[str, ZoneResult] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "listed", MappingProxyType(dict(self.listed)))

    @property
    def zones(self) -> frozenset[str]:
        return frozenset(self.listed)


def apply_scan(state: ListingState | None, scan: ScanResult) -> tuple[ListingState, list[ListingChange]]:
    """Fold one scan into the belief; return the new belief and the changes (each real change once).

    * definitive LISTED on a zone not believed listed → LISTED change;
    * definitive NOT_LISTED / ALLOWED on a zone believed listed → DELISTED change;
    * anything undetermined, or a zone absent from the scan → belief kept, no change.
    A first scan (no state) that finds listings reports each as LISTED.
    """
    if state is not None and state.target != scan.target:
        raise ValueError(f"state is for {state.target}, scan is for {scan.target}")
    listed: dict[str, ZoneResult] = dict(state.listed) if state else {}
    changes: list[ListingChange] = []
    for result in scan.results:
        if not result.status.is_definitive:
            continue
        was = result.zone_key in listed
        if result.status is ListingStatus.LISTED:
            if not was:
                changes.append(_change(scan, result, ChangeKind.LISTED))
            listed[result.zone_key] = result
        elif was:
            changes.append(_change(scan, listed.pop(result.zone_key), ChangeKind.DELISTED))
    return ListingState(scan.target, listed), changes


def _change(scan: ScanResult, result: ZoneResult, kind: ChangeKind) -> ListingChange:
    blocks = [c for c in result.codes if c.kind is CodeKind.BLOCK]
    return ListingChange(
        target=scan.target,
        zone_key=result.zone_key,
        zone_name=result.zone_name,
        kind=kind,
        severity=result.severity,
        codes=tuple(c.address for c in blocks),
        meaning="; ".join(c.meaning for c in blocks),
        reason=result.reason,
        observed_at=scan.finished_at,
    )


def state_from_scan(scan: ScanResult) -> ListingState:
    """The belief one scan supports on its own (its definitive listings only)."""
    return ListingState(scan.target, {r.zone_key: r for r in scan.results if r.status is ListingStatus.LISTED})


def diff_scans(previous: ScanResult | None, current: ScanResult) -> list[ListingChange]:
    """Changes from `previous` to `current`.

    Undetermined answers in `current` never produce a change. Limit: a zone that was undetermined
    in `previous` counts as not listed there, so listed → unknown → listed reports LISTED twice;
    for events published exactly once, persist a `ListingState` and use `apply_scan`.
    """
    state = state_from_scan(previous) if previous is not None else None
    return apply_scan(state, current)[1]


DEFAULT_SCAN_INTERVAL = timedelta(hours=4)
MIN_SCAN_INTERVAL = timedelta(minutes=1)
MAX_SCAN_INTERVAL = timedelta(days=7)


def validate_scan_interval(interval: timedelta, field_name: str = "scan_interval") -> timedelta:
    """Periodic scans: every 4 hours by default, never more often than once a minute (list usage terms)."""
    if not MIN_SCAN_INTERVAL <= interval <= MAX_SCAN_INTERVAL:
        raise InvalidArgument(field_name, "must be between 1 minute and 7 days")
    return interval


def scan_due(last_scan: datetime | None, interval: timedelta, now: datetime) -> bool:
    """Whether a periodic scan of a target is due (never scanned counts as due)."""
    return last_scan is None or now - last_scan >= interval


def blocklist_check(scan: ScanResult) -> CheckResult:
    """A scan as one verdict (preflight, ValidateDomain): a listing FAILs (a LOW one WARNs),
    any zone without a verdict makes a clean result UNKNOWN, never PASS."""
    listings = scan.listings
    details = {r.zone_key: r.status.value for r in scan.results}
    if listings:
        verdict = Verdict.FAIL if scan.worst_severity > Severity.LOW else Verdict.WARN
        return CheckResult(CheckKind.BLOCKLIST, scan.target, verdict, "; ".join(r.summary() for r in listings), details)
    if not scan.results:
        return CheckResult(
            CheckKind.BLOCKLIST, scan.target, Verdict.UNKNOWN, "no blocklist covers this target", details
        )
    if scan.undetermined:
        missing = "; ".join(r.summary() for r in scan.undetermined)
        return CheckResult(
            CheckKind.BLOCKLIST, scan.target, Verdict.UNKNOWN, f"not listed where checked, but {missing}", details
        )
    return CheckResult(
        CheckKind.BLOCKLIST, scan.target, Verdict.PASS, f"not listed on any of {len(scan.results)} blocklists", details
    )
