"""When watched IPs are scanned (each at its own moment of its tenant's interval, once per interval) and how a
zone's daily query budget is shared out: pure arithmetic, no clock, no database."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from libs.errors import InvalidArgument, PermissionDenied
from reputation.domain.query_budget import TenantLoad, plan_zone, queries_per_day, zone_asked
from reputation.domain.scan_schedule import (
    claim_until,
    next_scan_at,
    period_of,
    scan_due,
    scan_phase,
    too_far,
    validate_tenant_interval,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FOUR_HOURS = timedelta(hours=4)
FIVE_MINUTES = timedelta(minutes=5)
TICK = timedelta(minutes=1)


def addresses(count: int) -> list[str]:
    return [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(count)]


def run_ticks(ips: list[str], interval: timedelta, ticks: int) -> list[list[str]]:
    """What the periodic tick does, tick after tick: scan the due IPs, then move each to its next moment."""
    planned: dict[str, datetime | None] = dict.fromkeys(ips)
    scanned: list[list[str]] = []
    now = T0
    for _ in range(ticks):
        due = [ip for ip in ips if scan_due(next_scan_at=planned[ip], now=now)]
        for ip in due:
            planned[ip] = next_scan_at(now, interval=interval, address=ip)
        scanned.append(due)
        now += TICK
    return scanned


# -- the schedule -------------------------------------------------------------------------------------------


def test_each_ip_has_a_stable_phase_of_its_own() -> None:
    phases = [scan_phase(ip) for ip in addresses(1000)]
    assert all(0 <= p < 1 for p in phases)
    assert scan_phase("192.0.2.10") == scan_phase("192.0.2.10")  # the same in every process
    assert len(set(phases)) == 1000
    assert Counter(int(p * 4) for p in phases).most_common()[-1][1] > 200  # every quarter of the interval used


def test_the_next_moment_is_after_now_within_one_interval_and_on_the_ips_phase() -> None:
    for ip in addresses(50):
        for interval in (timedelta(minutes=1), FIVE_MINUTES, FOUR_HOURS, timedelta(days=7)):
            moment = next_scan_at(T0, interval=interval, address=ip)
            assert T0 < moment <= T0 + interval
            assert next_scan_at(moment, interval=interval, address=ip) - moment == interval
            assert period_of(moment, interval=interval, address=ip) == period_of(T0, interval=interval, address=ip) + 1


def test_a_never_scheduled_ip_is_due_at_once_then_at_its_moment() -> None:
    assert scan_due(next_scan_at=None, now=T0)
    moment = next_scan_at(T0, interval=FOUR_HOURS, address="192.0.2.10")
    assert not scan_due(next_scan_at=moment, now=moment - timedelta(seconds=1))
    assert scan_due(next_scan_at=moment, now=moment)


def test_1000_ips_every_4_hours_are_scanned_once_each_per_interval_a_few_a_minute_not_in_one_burst() -> None:
    ips = addresses(1000)
    ticks = 3 * 240  # three intervals of 4 h, a tick a minute
    scanned = run_ticks(ips, FOUR_HOURS, ticks)
    assert sorted(scanned[0]) == sorted(ips)  # never scheduled: all at the first tick
    later = scanned[1:]
    per_ip = Counter(ip for due in later for ip in due)
    assert set(per_ip.values()) in ({2}, {2, 3})  # once per interval over the next two intervals and a bit
    steady = [len(due) for due in later[240:480]]  # the second interval: spread
    assert sum(steady) == 1000
    assert max(steady) <= 15  # about 4 a minute; a burst would be 1000 in one tick


def test_100_ips_every_5_minutes_are_each_scanned_once_per_5_minutes() -> None:
    scanned = run_ticks(addresses(100), FIVE_MINUTES, 61)
    window = scanned[1:61]  # an hour after the first tick
    assert Counter(ip for due in window for ip in due) == Counter({ip: 12 for ip in addresses(100)})
    assert max(len(due) for due in window) <= 40  # about 20 a minute


def test_a_moment_planned_under_a_longer_interval_is_moved_and_a_claim_is_held_a_while() -> None:
    far = T0 + FOUR_HOURS - timedelta(minutes=1)
    assert too_far(next_scan_at=far, now=T0, interval=FIVE_MINUTES)
    assert not too_far(next_scan_at=far, now=T0, interval=FOUR_HOURS)
    assert not too_far(next_scan_at=None, now=T0, interval=FIVE_MINUTES)
    assert claim_until(T0, interval=FOUR_HOURS) == T0 + timedelta(minutes=10)
    assert claim_until(T0, interval=timedelta(minutes=1)) == T0 + timedelta(minutes=1)


# -- who may scan how often ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "interval",
    [timedelta(seconds=59), timedelta(seconds=0), timedelta(seconds=-60), timedelta(days=7, seconds=1)],
)
def test_an_interval_out_of_bounds_is_invalid_argument_naming_the_field(interval: timedelta) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_tenant_interval(interval=interval, default=FOUR_HOURS, by_admin=True, field_name="x.scan_interval")
    assert caught.value.violations[0].field == "x.scan_interval"
    assert "between 60s (1 minute) and 604800s (7 days)" in caught.value.violations[0].description


def test_a_fraction_of_a_second_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="whole number of seconds"):
        validate_tenant_interval(interval=timedelta(seconds=90.5), default=FOUR_HOURS, by_admin=True)


def test_operators_may_lengthen_or_keep_the_default_only_admins_shorten() -> None:
    check = validate_tenant_interval
    assert check(interval=None, default=FOUR_HOURS, by_admin=False) is None
    assert check(interval=FOUR_HOURS, default=FOUR_HOURS, by_admin=False) == FOUR_HOURS
    assert check(interval=timedelta(hours=12), default=FOUR_HOURS, by_admin=False) == timedelta(hours=12)
    with pytest.raises(PermissionDenied, match="only an admin"):
        check(interval=FIVE_MINUTES, default=FOUR_HOURS, by_admin=False)
    assert check(interval=timedelta(minutes=1), default=FOUR_HOURS, by_admin=True) == timedelta(minutes=1)


def test_an_installation_may_lower_the_floor_for_zones_of_its_own() -> None:
    """EE_REPUTATION_MIN_SCAN_INTERVAL_SECONDS: an admin may then go down to it, never below, never below 0."""
    floor = timedelta(seconds=1)
    two = timedelta(seconds=2)
    assert validate_tenant_interval(interval=two, default=FOUR_HOURS, by_admin=True, minimum=floor) == two
    with pytest.raises(PermissionDenied):
        validate_tenant_interval(interval=two, default=FOUR_HOURS, by_admin=False, minimum=floor)
    with pytest.raises(InvalidArgument, match=r"between 5s and 604800s") as caught:
        validate_tenant_interval(
            interval=two, default=FOUR_HOURS, by_admin=True, minimum=timedelta(seconds=5), field_name="s.scan_interval"
        )
    assert caught.value.violations[0].field == "s.scan_interval"


# -- a zone's daily query budget ----------------------------------------------------------------------------


def test_what_a_5_minute_interval_costs_a_zone_a_day() -> None:
    assert queries_per_day(ips=1, interval=FIVE_MINUTES) == 288
    assert queries_per_day(ips=100, interval=FIVE_MINUTES) == 28_800
    assert queries_per_day(ips=1000, interval=FIVE_MINUTES) == 288_000
    assert queries_per_day(ips=1000, interval=FOUR_HOURS) == 6_000


def test_without_a_budget_or_within_it_every_tenant_keeps_its_interval() -> None:
    loads = [TenantLoad("sos-expat", 100, FIVE_MINUTES), TenantLoad("ulixai", 1000, FOUR_HOURS)]
    free = plan_zone(zone_key="spamcop", daily_budget=None, loads=loads)
    assert (free.wanted, free.planned, free.limited, dict(free.every)) == (34_800, 34_800, False, {})
    fits = plan_zone(zone_key="mailspike", daily_budget=100_000, loads=loads)
    assert not fits.limited and fits.interval_for("sos-expat", FIVE_MINUTES) == FIVE_MINUTES


def test_1000_ips_every_5_minutes_on_a_100000_a_day_zone_ask_it_every_4th_scan() -> None:
    plan = plan_zone(zone_key="spamhaus-zen", daily_budget=100_000, loads=[TenantLoad("sos-expat", 1000, FIVE_MINUTES)])
    # 90 000 usable a day (10 % headroom) for 1000 IPs: one query per IP every 960 s at most -> every 4th scan.
    assert plan.limited and plan.every_for("sos-expat") == 4
    assert plan.interval_for("sos-expat", FIVE_MINUTES) == timedelta(minutes=20)
    assert (plan.wanted, plan.planned) == (288_000, 72_000)


def test_the_fastest_tenant_gives_way_not_the_one_at_the_default() -> None:
    loads = [TenantLoad("fast", 1000, FIVE_MINUTES), TenantLoad("default", 500, FOUR_HOURS)]
    plan = plan_zone(zone_key="spamhaus-zen", daily_budget=100_000, loads=loads)
    assert plan.every_for("fast") == 4 and plan.every_for("default") == 1
    assert plan.planned <= 90_000


def test_a_budget_too_small_for_anyone_slows_every_tenant_and_stays_within_it() -> None:
    loads = [TenantLoad("fast", 1000, FIVE_MINUTES), TenantLoad("default", 500, FOUR_HOURS)]
    plan = plan_zone(zone_key="mailspike", daily_budget=1_000, loads=loads)
    assert plan.every_for("default") > 1 and plan.every_for("fast") > plan.every_for("default")
    assert plan.planned <= 900
    # Both now ask the zone about as often per IP: the common interval, in whole scans.
    fast = plan.interval_for("fast", FIVE_MINUTES)
    slow = plan.interval_for("default", FOUR_HOURS)
    assert abs(fast - slow) < FOUR_HOURS


@pytest.mark.parametrize("ips", [1, 7, 100, 999, 1000, 5000])
@pytest.mark.parametrize("budget", [1, 500, 10_000, 100_000])
def test_the_plan_never_exceeds_the_usable_budget(ips: int, budget: int) -> None:
    loads = [
        TenantLoad("a", ips, timedelta(minutes=1)),
        TenantLoad("b", ips // 3, FIVE_MINUTES),
        TenantLoad("c", ips, FOUR_HOURS),
    ]
    plan = plan_zone(zone_key="z", daily_budget=budget, loads=loads)
    assert plan.planned <= max(1, int(budget * 0.9))


def test_a_throttled_zone_is_asked_at_one_scan_in_n_at_an_offset_of_each_ips_own() -> None:
    for ip in addresses(20):
        asked = [zone_asked(address=ip, zone_key="spamhaus-zen", period=k, every=4) for k in range(100, 112)]
        assert asked.count(True) == 3 and asked[:4].count(True) == 1
    firsts = Counter(
        next(k for k in range(4) if zone_asked(address=ip, zone_key="spamhaus-zen", period=k, every=4))
        for ip in addresses(400)
    )
    assert min(firsts.values()) > 60  # spread over the four scans, not all IPs at the same one
    assert all(zone_asked(address="192.0.2.10", zone_key="z", period=k, every=1) for k in range(5))
