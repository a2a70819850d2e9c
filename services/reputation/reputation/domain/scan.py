"""Scan results and the changes between them (newly listed, delisted).

A change is only ever derived from *definitive* answers (listed / not listed / whitelisted). An
answer we could not get (timeout, zone error, unhealthy zone, skipped) leaves what we believed
untouched: a resolver hiccup must neither delist an IP nor list it again afterwards. That is why
events should come from `apply_scan` over a persisted `ListingState` (exactly once per real change),
not from comparing the last two scans (`diff_scans` is that convenience, with its limit stated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from libs.errors import InvalidArgument
from reputation.domain.checks import CheckKind, CheckResult, Verdict
from reputation.domain.dnsbl import ListingStatus, ZoneHealth, ZoneResult
from reputation.domain.zones import CodeKind, Severity, ZoneKind, public_zone_name


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


@dataclass(frozen=True)
class Listing:
    """One zone believed to list an IP, and since when."""

    result: ZoneResult
    since: datetime


@dataclass(frozen=True)
class IpListings:
    """What the service believes about one IP (its `ListingState`, kept between scans): the zones listing it, and
    when the scan this belief comes from finished (an older scan recorded later does not change it)."""

    address: str
    tenant_id: str
    listed: Mapping[str, Listing]
    scanned_at: datetime
    changed_at: datetime | None = None

    @property
    def state(self) -> ListingState:
        return ListingState(self.address, {key: item.result for key, item in self.listed.items()})


def publicize(scan: ScanResult) -> ScanResult:
    """The same scan with every zone named by its public name, as people are shown it and events carry it."""
    public = tuple(replace(r, zone_name=public_zone_name(r.zone_key, r.zone_name)) for r in scan.results)
    return scan if public == scan.results else replace(scan, results=public)


@dataclass(frozen=True)
class ZoneVerdict:
    """One zone's answer about a target as people see it and as the scan history keeps it."""

    zone: str  # the public name
    zone_key: str
    status: ListingStatus
    answers: tuple[str, ...] = ()
    meaning: str = ""  # of the block codes for a listing, of every code otherwise
    reason: str = ""  # the list's own TXT text
    severity: Severity = Severity.NONE
    detail: str = ""

    @classmethod
    def of(cls, result: ZoneResult) -> ZoneVerdict:
        shown = [c for c in result.codes if c.kind is CodeKind.BLOCK] if result.listed else list(result.codes)
        return cls(
            zone=public_zone_name(result.zone_key, result.zone_name),
            zone_key=result.zone_key,
            status=result.status,
            answers=tuple(dict.fromkeys(c.address for c in result.codes)),
            meaning="; ".join(dict.fromkeys(c.meaning for c in shown)),
            reason=result.reason,
            severity=result.severity,
            detail=result.detail,
        )


@dataclass(frozen=True)
class ScanRecord:
    """One scan of an IP as its history keeps it: when, why (`trigger`), and each zone's verdict."""

    scan_time: datetime
    trigger: str  # "check", "tenant_scan", "periodic", "first"
    listed: bool
    complete: bool
    zones: tuple[ZoneVerdict, ...]

    @classmethod
    def of(cls, scan: ScanResult, trigger: str) -> ScanRecord:
        return cls(
            scan_time=scan.finished_at,
            trigger=trigger,
            listed=scan.is_listed,
            complete=scan.complete,
            zones=tuple(ZoneVerdict.of(r) for r in scan.results),
        )


DEFAULT_SCAN_INTERVAL = timedelta(hours=4)
MIN_SCAN_INTERVAL = timedelta(minutes=1)
MAX_SCAN_INTERVAL = timedelta(days=7)


def validate_scan_interval(interval: timedelta, field_name: str = "scan_interval") -> timedelta:
    """Periodic scans: every 4 hours by default, never more often than once a minute (list usage terms)."""
    if not MIN_SCAN_INTERVAL <= interval <= MAX_SCAN_INTERVAL:
        raise InvalidArgument(field_name, "must be between 1 minute and 7 days")
    return interval


def slot_of(now: datetime, interval: timedelta) -> int:
    """The slot `now` falls in: slots are consecutive intervals counted from the Unix epoch (one periodic scan
    or check per slot, whichever replica claims it)."""
    return int(now.timestamp()) // int(interval.total_seconds())


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
