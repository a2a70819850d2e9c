"""Tenant-local days and hourly quotas."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ippool.domain.sending_day import (
    SendingWindow,
    hourly_quota,
    local_day_bounds,
    local_sending_day,
    window_hours,
)
from libs.errors import InvalidArgument

PARIS = "Europe/Paris"


def test_local_day_follows_the_tenant_time_zone() -> None:
    instant = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)  # 00:30 in Paris
    assert local_sending_day(instant, PARIS) == date(2026, 1, 6)
    assert local_sending_day(instant, "UTC") == date(2026, 1, 5)
    assert local_sending_day(instant, "America/New_York") == date(2026, 1, 5)


def test_day_resets_at_local_midnight() -> None:
    start, end = local_day_bounds(date(2026, 1, 6), PARIS)
    assert start == datetime(2026, 1, 5, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 1, 6, 23, 0, tzinfo=UTC)
    assert local_sending_day(start - timedelta(microseconds=1), PARIS) == date(2026, 1, 5)
    assert local_sending_day(start, PARIS) == date(2026, 1, 6)


def test_daylight_saving_days_have_23_and_25_hours() -> None:
    spring = local_day_bounds(date(2026, 3, 29), PARIS)
    autumn = local_day_bounds(date(2026, 10, 25), PARIS)
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)
    assert window_hours(date(2026, 3, 29), SendingWindow(PARIS)) == 23
    assert window_hours(date(2026, 10, 25), SendingWindow(PARIS)) == 25


def _hours_of(day: date, window: SendingWindow) -> list[datetime]:
    start, end = local_day_bounds(day, window.zone)
    hours = []
    instant = start
    while instant < end:
        hours.append(instant)
        instant += timedelta(hours=1)
    return hours


@pytest.mark.parametrize("day", [date(2026, 1, 6), date(2026, 3, 29), date(2026, 10, 25)])
@pytest.mark.parametrize("daily", [0, 1, 50, 200, 1500, 10000, 9999])
@pytest.mark.parametrize(("start", "end"), [(0, 24), (8, 20), (9, 10), (1, 4)])
def test_hourly_quota_covers_the_day_inside_the_window_only(day: date, daily: int, start: int, end: int) -> None:
    window = SendingWindow(PARIS, start, end)
    quotas = {instant: hourly_quota(daily, window, instant) for instant in _hours_of(day, window)}
    inside = [q for instant, q in quotas.items() if start <= instant.astimezone(ZoneInfo(PARIS)).hour < end]
    outside = [q for instant, q in quotas.items() if not start <= instant.astimezone(ZoneInfo(PARIS)).hour < end]
    assert all(q == 0 for q in outside)
    assert sum(inside) >= daily
    assert all(q <= daily for q in inside)
    if inside and daily:
        assert sum(inside) - daily < len(inside)  # ceil: never more than one message per hour of slack


def test_hourly_quota_examples() -> None:
    window = SendingWindow(PARIS, 8, 20)  # 12 hours
    morning = datetime(2026, 1, 6, 8, 15, tzinfo=UTC)  # 09:15 Paris
    assert hourly_quota(1500, window, morning) == 125
    assert hourly_quota(50, window, morning) == 5
    assert hourly_quota(1500, window, datetime(2026, 1, 6, 19, 0, tzinfo=UTC)) == 0  # 20:00 Paris


def test_window_validation_names_fields() -> None:
    with pytest.raises(InvalidArgument) as caught:
        SendingWindow("Mars/Olympus", 25, 0)
    assert [v.field for v in caught.value.violations] == ["time_zone", "start_hour", "end_hour"]
    with pytest.raises(InvalidArgument) as caught:
        SendingWindow(PARIS, 20, 8)
    assert [v.field for v in caught.value.violations] == ["end_hour"]


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError):
        local_sending_day(datetime(2026, 1, 5, 12), PARIS)
