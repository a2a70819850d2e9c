"""The simulation's made-up world, without I/O: where the default scenario puts its events, and the accounting
records of an IP's day as campaign-gateway's real aggregator counts them."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from campaign_gateway.domain.accounting import AccountingAggregator, AccountingRecord, DayTotals
from campaign_gateway.domain.providers import ProviderGroup
from libs.cli import main
from simulation.command import SCENARIOS
from simulation.scenarios import ScenarioKind, default_scenario
from simulation.traffic import day_records, list_by_provider

ZONE = ZoneInfo("Europe/Paris")
DAY = date(2026, 1, 20)


def test_the_default_scenario_of_42_days_and_10_ips() -> None:
    scenario = default_scenario(days=42, ips=10)
    low, sbl = scenario.listings
    assert (low.kind, low.ip, low.zone_key, low.code, low.listed_day, low.delisted_day) == (
        ScenarioKind.LOW_LISTING, 1, "mailspike", "127.0.0.14", 10, 14,
    )  # fmt: skip
    assert (sbl.kind, sbl.ip, sbl.zone_key, sbl.code, sbl.listed_day, sbl.delisted_day) == (
        ScenarioKind.LISTING, 2, "spamhaus-zen", "127.0.0.2", 17, 20,
    )  # fmt: skip
    (week,) = scenario.bad_weeks
    assert (week.ips, week.first_day, week.last_day, week.bounce_rate) == ((8, 9), 23, 29, 0.06)
    (gmail,) = scenario.throttling
    assert (gmail.ips, gmail.first_day, gmail.last_day) == ((0, 5), 19, 22)


def test_a_short_run_still_gets_every_scenario_with_room_after_it() -> None:
    scenario = default_scenario(days=20, ips=3)
    assert scenario.kinds == frozenset(ScenarioKind)
    assert [(item.ip, item.listed_day, item.delisted_day) for item in scenario.listings] == [(1, 5, 9), (2, 8, 11)]
    assert (scenario.bad_weeks[0].ips, scenario.bad_weeks[0].first_day, scenario.bad_weeks[0].last_day) == (
        (1,),
        11,
        17,
    )
    assert (scenario.throttling[0].ips, scenario.throttling[0].first_day) == ((0,), 9)


def test_scenarios_can_be_left_out() -> None:
    only = default_scenario(days=42, ips=10, kinds={ScenarioKind.BAD_WEEK})
    assert only.kinds == {ScenarioKind.BAD_WEEK} and not only.listings and not only.throttling
    assert default_scenario(days=42, ips=10, kinds=()).kinds == frozenset()


def test_a_listing_answers_from_its_time_of_day_until_the_delisting() -> None:
    scenario = default_scenario(days=42, ips=10)
    assert scenario.listed_code(2, "spamhaus-zen", 17, time(10, 39)) is None
    assert scenario.listed_code(2, "spamhaus-zen", 17, time(10, 40)) == "127.0.0.2"
    assert scenario.listed_code(2, "spamhaus-zen", 20, time(10, 19)) == "127.0.0.2"
    assert scenario.listed_code(2, "spamhaus-zen", 20, time(10, 20)) is None
    assert scenario.listed_code(3, "spamhaus-zen", 18, time(12)) is None
    assert scenario.listed_code(2, "spamcop", 18, time(12)) is None
    assert scenario.bounce_rate(8, 23) == 0.06 and scenario.bounce_rate(8, 30) is None
    assert scenario.throttle_rate(0, 22) == 0.2 and scenario.throttle_rate(0, 23) == 0.0


def _aggregate(
    mail_evening: list[AccountingRecord], mail_overnight: list[AccountingRecord]
) -> dict[ProviderGroup, DayTotals]:
    aggregator = AccountingAggregator(timezone_for=lambda _address: ZONE)
    aggregator.add_all(mail_evening)
    aggregator.add_all(mail_overnight)
    assert aggregator.resolve_pending() == 0 and not aggregator.pending
    return {key.provider: totals for key, totals in aggregator.totals().items()}


def test_an_ip_day_is_counted_by_the_real_aggregator_on_its_day() -> None:
    given = list_by_provider(2000)
    mail = day_records(
        rng=random.Random(1), address="192.0.2.11", day=DAY, day_number=16, by_provider=given, stop_at=None, zone=ZONE
    )
    totals = _aggregate(mail.evening, mail.overnight)
    assert mail.sent == sum(given.values()) == sum(t.sent for t in totals.values())
    assert {key for key, count in given.items() if count} == set(totals)
    bounced = sum(t.bounced for t in totals.values())
    assert 0.002 < bounced / mail.sent < 0.02  # about 0.8 %
    assert totals[ProviderGroup.GMAIL].throttled == 0  # Gmail throttles only in the scenario
    assert all(t.complained == 0 for group, t in totals.items() if group is ProviderGroup.GMAIL)


def test_late_bounces_and_complaints_arrive_overnight_and_land_on_the_day_of_their_message() -> None:
    mail = day_records(
        rng=random.Random(7), address="192.0.2.11", day=DAY, day_number=16, by_provider=list_by_provider(20_000),
        stop_at=None, zone=ZONE, bounce_rate=0.06,
    )  # fmt: skip
    evening = _aggregate(mail.evening, [])
    revised = _aggregate(mail.evening, mail.overnight)
    assert mail.overnight
    assert sum(t.bounced for t in revised.values()) > sum(t.bounced for t in evening.values())
    assert sum(t.sent for t in revised.values()) == sum(t.sent for t in evening.values())
    assert 0.05 < sum(t.bounced for t in revised.values()) / mail.sent < 0.07


def test_gmail_throttling_defers_its_share_of_the_gmail_attempts_as_reputation_throttling() -> None:
    mail = day_records(
        rng=random.Random(3), address="192.0.2.11", day=DAY, day_number=16, by_provider={ProviderGroup.GMAIL: 1000},
        stop_at=None, zone=ZONE, gmail_throttle_rate=0.2,
    )  # fmt: skip
    gmail = _aggregate(mail.evening, mail.overnight)[ProviderGroup.GMAIL]
    assert gmail.throttled == gmail.deferred
    assert 0.15 < gmail.throttled / (gmail.sent + gmail.deferred) < 0.25


def test_a_stopped_ip_sends_nothing_after_its_server_was_switched_off() -> None:
    stop = datetime.combine(DAY, time(13), tzinfo=ZONE).astimezone(UTC)
    mail = day_records(
        rng=random.Random(1), address="192.0.2.13", day=DAY, day_number=16, by_provider={ProviderGroup.GMAIL: 1200},
        stop_at=stop, zone=ZONE,
    )  # fmt: skip
    assert mail.sent == 400  # 09:00-13:00 of the 09:00-21:00 sending hours
    assert all(record.time_queued is None or record.time_queued < stop for record in mail.evening)


def test_the_same_generator_seed_gives_the_same_records() -> None:
    def records(seed: str) -> list[AccountingRecord]:
        mail = day_records(
            rng=random.Random(seed), address="192.0.2.11", day=DAY, day_number=3, by_provider=list_by_provider(500),
            stop_at=None, zone=ZONE,
        )  # fmt: skip
        return mail.evening + mail.overnight

    assert records("2026/192.0.2.11/3") == records("2026/192.0.2.11/3")
    assert records("2026/192.0.2.11/3") != records("2027/192.0.2.11/3")


def test_the_command_offers_exactly_the_scenario_kinds() -> None:
    assert set(SCENARIOS) == {kind.value for kind in ScenarioKind}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "none", "--scenario", "listing"], "--scenario none cannot be combined"),
        (["--days", "0"], "Invalid value for '--days'"),
        (["--ips", "201"], "Invalid value for '--ips'"),
        (["--scenario", "flood"], "Invalid value for '--scenario'"),
    ],
)
def test_bad_options_are_named_before_anything_runs(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["simulate", *args])
    assert result.exit_code == 2
    assert message in result.output
