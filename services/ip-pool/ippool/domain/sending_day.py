"""A tenant's day and sending hours: time zone, local day, and the hourly share of a daily quota.

Public API:
    SendingWindow(time_zone="UTC", start_hour=0, end_hour=24)   -- validated; `.zone` is the ZoneInfo
    local_sending_day(instant, time_zone) -> date                -- the tenant-local day of a UTC instant
    decision_day(instant, time_zone, decision_hour) -> date      -- the latest local day whose decision is due
    local_day_bounds(day, time_zone) -> (start_utc, end_utc)     -- when that local day begins and ends
    window_hours(day, window) -> int                             -- real hours the window spans that day
    hourly_quota(daily_quota, window, instant) -> int

Rules: the day's quota resets at local midnight; the day's warmup decision is taken later, at the tenant's local
decision hour (06:00 by default), so the night's late bounces and complaints count. Until then the IP sends at
the quota of the day before. The window is [start_hour, end_hour) in local wall-clock
time, inside one local day (no window over midnight: the daily quota belongs to one local day). Inside the
window each hour gets ceil(daily / hours) -- the hours together cover the day even if one hour under-sends,
and the daily quota still caps the total; outside it the hourly quota is 0. Hours are counted in real time, so
a daylight-saving day has 23 or 25 hours and the spread still covers the day.

The default window is the whole day: a tenant who never set one is not silently cut off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from libs.errors import InvalidArgument, Violations


def _zone(time_zone: str | ZoneInfo, field_name: str = "time_zone") -> ZoneInfo:
    if isinstance(time_zone, ZoneInfo):
        return time_zone
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidArgument(field_name, f"{time_zone!r} is not an IANA time zone (e.g. Europe/Paris)") from None


@dataclass(frozen=True)
class SendingWindow:
    """A tenant's time zone and the local hours during which its IPs send."""

    time_zone: str = "UTC"
    start_hour: int = 0
    end_hour: int = 24

    def __post_init__(self) -> None:
        problems = Violations()
        if not isinstance(self.time_zone, str) or not self.time_zone:
            problems.add("time_zone", "an IANA time zone is required (e.g. Europe/Paris)")
        else:
            try:
                _zone(self.time_zone)
            except InvalidArgument as error:
                problems.items.extend(error.violations)
        start_ok = isinstance(self.start_hour, int) and 0 <= self.start_hour <= 23
        end_ok = isinstance(self.end_hour, int) and 1 <= self.end_hour <= 24
        if not start_ok:
            problems.add("start_hour", "must be a whole hour from 0 to 23")
        if not end_ok:
            problems.add("end_hour", "must be a whole hour from 1 to 24")
        if start_ok and end_ok and self.end_hour <= self.start_hour:
            problems.add("end_hour", "must be after start_hour (a window cannot span midnight)")
        problems.raise_if_any()

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.time_zone)


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instants must be timezone-aware (UTC)")


def local_sending_day(instant: datetime, time_zone: str | ZoneInfo) -> date:
    """The tenant-local calendar day that `instant` falls in: the day whose quota applies."""
    _require_aware(instant)
    return instant.astimezone(_zone(time_zone)).date()


def decision_day(instant: datetime, time_zone: str | ZoneInfo, decision_hour: int) -> date:
    """The latest tenant-local day whose warmup decision is due at `instant`: today from `decision_hour`:00 local
    time on, yesterday before it (on a daylight-saving day the wall clock decides)."""
    _require_aware(instant)
    local = instant.astimezone(_zone(time_zone))
    return local.date() if local.hour >= decision_hour else local.date() - timedelta(days=1)


def _local_instant_utc(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """UTC instant of local `hour`:00 on `day`; hour 24 is the next midnight."""
    if hour == 24:
        day, hour = day + timedelta(days=1), 0
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def local_day_bounds(day: date, time_zone: str | ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the local `day`: when its quota starts and when it resets."""
    zone = _zone(time_zone)
    return _local_instant_utc(day, 0, zone), _local_instant_utc(day, 24, zone)


def window_hours(day: date, window: SendingWindow) -> int:
    """Real hours the window spans on `day` (23 or 25 across a daylight-saving change), at least 1."""
    zone = window.zone
    span = _local_instant_utc(day, window.end_hour, zone) - _local_instant_utc(day, window.start_hour, zone)
    return max(1, -(-int(span.total_seconds()) // 3600))


def hourly_quota(daily_quota: int, window: SendingWindow, instant: datetime) -> int:
    """Messages allowed in the local hour holding `instant`: ceil(daily / window hours), 0 outside the window."""
    _require_aware(instant)
    if daily_quota < 0:
        raise InvalidArgument("daily_quota", "must be >= 0")
    local = instant.astimezone(window.zone)
    if not window.start_hour <= local.hour < window.end_hour:
        return 0
    hours = window_hours(local.date(), window)
    return -(-daily_quota // hours)
