"""THE place where it is decided when a watched IP is scanned periodically, and how often its tenant may ask.

Public API:
    ScheduledIp             -- a watched IP in service and its next periodic scan
    TenantScanInterval      -- a tenant's own interval (None: the installation's default)
    scan_phase(address) -> float                          the IP's own place in every interval, in [0, 1)
    period_of(now, *, interval, address) -> int           the interval the latest moment of the IP belongs to
    next_scan_at(now, *, interval, address) -> datetime   the IP's first moment after `now`
    scan_due(*, next_scan_at, now) -> bool
    too_far(*, next_scan_at, now, interval) -> bool       a moment planned under a longer interval
    claim_until(now, *, interval) -> datetime             how long a claimed scan is held before it is retried
    validate_tenant_interval(*, interval, default, by_admin, field_name) -> timedelta

Scans are spread over the interval, not one burst at the top of a slot: each IP has its own phase (a stable hash
of its address), and its moments are `(k + phase) * interval` counted from the Unix epoch. With 1 000 IPs every
4 h, about four are scanned a minute; with 100 IPs every 5 minutes, about twenty. Each periodic tick scans the IPs
whose moment has come (`scan_due`), and an IP never scheduled yet (new, or from before the schedule) at once.

Exactly once per IP and interval, whatever the number of replicas or workers: whoever scans an IP first moves its
`next_scan_at` from the value it read to `claim_until` (a compare-and-set on the IP's row: one of two racers
wins), and, once the result is recorded, to `next_scan_at(now)`, the IP's next moment. A scan that dies on the
way (a crash, DNS down) is taken again when the claim runs out, never lost for a whole interval.

A tenant's interval (`validate_tenant_interval`): the installation's default (EE_REPUTATION_SCAN_INTERVAL_SECONDS,
4 h) unless the tenant has its own, from 1 minute to 7 days. Scanning more often spends what every tenant shares
-- the installation's resolver capacity and the blocklists' free-use allowance, counted per querying resolver --
so a tenant's operators may lengthen their interval or go back to the default, and only an admin may shorten it
below the default.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from libs.errors import InvalidArgument, PermissionDenied
from reputation.domain.scan import MAX_SCAN_INTERVAL, MIN_SCAN_INTERVAL

# How long a claimed scan stays claimed before another tick may take it again (at most the interval itself).
SCAN_CLAIM = timedelta(minutes=10)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ScheduledIp:
    """A watched IP in service and the moment of its next periodic scan (None: never scheduled, due at once, that
    is since `registered_at`, when it was first watched)."""

    address: str
    tenant_id: str
    next_scan_at: datetime | None = None
    registered_at: datetime | None = None

    @property
    def due_since(self) -> datetime | None:
        """When its scan fell due: its planned moment, or, never scheduled, its registration."""
        return self.next_scan_at if self.next_scan_at is not None else self.registered_at


@dataclass(frozen=True)
class TenantScanInterval:
    """A tenant's own scan interval as stored; None: the installation's default."""

    tenant_id: str
    interval: timedelta | None = None
    updated_at: datetime | None = None

    def effective(self, default: timedelta) -> timedelta:
        return self.interval or default


def stable_fraction(text: str) -> float:
    """A number in [0, 1) that depends only on `text` (the same in every process, unlike `hash`)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def scan_phase(address: str) -> float:
    """Where in each interval the IP's scan falls: 0.25 is a quarter of the way into it."""
    return stable_fraction(f"scan:{address}")


def _micros(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def _interval_micros(interval: timedelta) -> int:
    micros = _micros(interval)
    if micros <= 0:
        raise ValueError(f"a scan interval must be positive, not {interval}")
    return micros


def _offset_micros(address: str, interval_micros: int) -> int:
    return math.floor(scan_phase(address) * interval_micros)


# Moments are counted in whole microseconds from the epoch, so a tick that lands exactly on one is in its period.


def period_of(now: datetime, *, interval: timedelta, address: str) -> int:
    """k of the IP's latest moment `(k + phase) * interval` at or before `now`."""
    size = _interval_micros(interval)
    return (_micros(now - _EPOCH) - _offset_micros(address, size)) // size


def next_scan_at(now: datetime, *, interval: timedelta, address: str) -> datetime:
    """The IP's first moment strictly after `now`."""
    size = _interval_micros(interval)
    period = period_of(now, interval=interval, address=address) + 1
    return _EPOCH + timedelta(microseconds=period * size + _offset_micros(address, size))


def scan_due(*, next_scan_at: datetime | None, now: datetime) -> bool:
    """Never scheduled (a new IP, or one from before the schedule) is due at once."""
    return next_scan_at is None or next_scan_at <= now


def too_far(*, next_scan_at: datetime | None, now: datetime, interval: timedelta) -> bool:
    """A moment further away than one interval was planned under a longer one (the tenant's interval or the
    default was shortened since): it is moved to the IP's next moment under the interval in force."""
    return next_scan_at is not None and next_scan_at > now + interval


def claim_until(now: datetime, *, interval: timedelta) -> datetime:
    """What a claim sets `next_scan_at` to until the result is recorded."""
    return now + min(SCAN_CLAIM, interval)


def validate_tenant_interval(
    *,
    interval: timedelta | None,
    default: timedelta,
    by_admin: bool,
    minimum: timedelta = MIN_SCAN_INTERVAL,
    field_name: str = "scan_interval",
) -> timedelta | None:
    """The interval a tenant asks for, checked (None: the installation's default).

    `minimum` is the installation's floor: 1 minute (the lists' usage terms) unless the operator lowered it for
    zones of their own (EE_REPUTATION_MIN_SCAN_INTERVAL_SECONDS: a private mirror, a test's rbldnsd).
    Raises InvalidArgument naming the field outside the floor to 7 days or for a fraction of a second, and
    PermissionDenied when someone other than an admin asks for less than the default.
    """
    if interval is None:
        return None
    if interval.microseconds:
        raise InvalidArgument(field_name, "must be a whole number of seconds")
    if not minimum <= interval <= MAX_SCAN_INTERVAL:
        floor = int(minimum.total_seconds())
        raise InvalidArgument(
            field_name,
            f"must be between {floor}s{' (1 minute)' if floor == 60 else ''} and "
            f"{int(MAX_SCAN_INTERVAL.total_seconds())}s (7 days), or unset for the installation's default",
        )
    if interval < default and not by_admin:
        raise PermissionDenied(
            f"only an admin may scan a tenant's IPs more often than the installation's default of "
            f"{int(default.total_seconds())}s: it spends the resolver capacity and blocklist allowance every "
            "tenant shares"
        )
    return interval
