"""Tables a person reads: enum values without their prefix, times in the operator's zone with its name, and
lines that stay whole when piped."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import pytest

from cli.gateway import Reply
from cli.ips import render_decisions, render_ip, render_ips
from cli.render import Output, duration, enum_text, number, percent, when

IP = {
    "address": "192.0.2.10",
    "tenant_id": "sos-expat",
    "purpose": "marketing",
    "pool": "default",
    "pmta_node": "pmta1",
    "helo_hostname": "",
    "state": "IP_STATE_STANDBY",
    "state_reason": "listed on zen.spamhaus.org",
    "warmup": {
        "schedule_id": "default",
        "step_index": 2,
        "sending_day_in_step": 3,
        "sending_day": 17,
        "step_daily_volume": 500,
        "last_sending_day": "2026-01-04",
    },
    "quota": {
        "day": "2026-01-05",
        "daily": 0,
        "hourly": 0,
        "used_today": 0,
        "remaining_today": 0,
        "by_provider": [{"provider": "PROVIDER_GROUP_GMAIL", "cap": 0, "used_today": 0, "remaining_today": 0}],
    },
    "create_time": "2026-01-05T09:00:00.123456789Z",
    "update_time": "2026-01-05T09:30:00Z",
    "active_listings": ["zen.spamhaus.org"],
    "standby_since": "2026-01-05T09:30:00Z",
}


@pytest.fixture
def paris() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Paris"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("IP_STATE_WARMING", "warming"),
        ("LISTING_STATUS_NOT_LISTED", "not listed"),
        ("CHECK_VERDICT_PASS", "pass"),
        ("ZONE_HEALTH_STATUS_UNREACHABLE", "unreachable"),
        ("CAMPAIGN_STAGE_CAMPAIGN_CREATED", "campaign created"),
        ("DELIVERY_STATE_DELIVERED", "delivered"),
        ("IP_STATE_UNSPECIFIED", "-"),
        ("", "-"),
        ("REGISTER", "register"),
    ],
)
def test_enum_values_lose_their_type_prefix(value: str, shown: str) -> None:
    assert enum_text(value) == shown


def test_times_are_in_the_operators_zone_and_say_which(paris: None) -> None:
    assert when("2026-01-05T09:00:00.123456789Z") == "2026-01-05 10:00:00 CET"
    assert when("2026-07-05T09:00:00Z", seconds=False) == "2026-07-05 11:00 CEST"
    assert when("") == "-" and when(None) == "-"


def test_durations_rates_and_counts_read_as_people_write_them() -> None:
    assert duration("86400s") == "24h" and duration("604800s") == "7d" and duration("5400s") == "90m"
    assert duration("45s") == "45s" and duration(None) == "-"
    assert percent(0.02) == "2%" and percent(0.001) == "0.1%" and percent(None) == "-"
    assert number(10000) == "10 000" and number(None) == "-"


def test_an_ip_shown_has_no_raw_enum_and_marked_times(capsys: pytest.CaptureFixture[str], paris: None) -> None:
    render_ip(Output(json_mode=False), IP)
    out = capsys.readouterr().out
    assert "IP_STATE_" not in out and "PROVIDER_GROUP_" not in out
    assert "standby  (listed on zen.spamhaus.org)" in out
    assert "3 (500/day)" in out  # steps are counted from 1 for people
    assert re.search(r"^created +2026-01-05 10:00:00 CET$", out, re.M)
    assert "gmail" in out


def test_a_piped_table_keeps_each_row_on_one_line_without_trailing_spaces(capsys: pytest.CaptureFixture[str]) -> None:
    ips = [dict(IP, address=f"192.0.2.{n}", active_listings=[f"zone{z}.example" for z in range(8)]) for n in range(3)]
    render_ips(Output(json_mode=False), {"ips": ips, "next_page_token": "abc"})
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == [
        "address",
        "tenant",
        "state",
        "warmup",
        "step",
        "quota",
        "today",
        "used",
        "left",
        "pmta",
        "node",
        "listed",
        "on",
    ]
    rows = [line for line in lines if line.startswith("192.0.2.")]
    assert len(rows) == 3 and all("zone7.example" in row for row in rows)
    assert all(line == line.rstrip() for line in lines)
    assert captured.err.strip() == "more: the same command with --page-token abc"


def test_user_text_is_never_read_as_markup(capsys: pytest.CaptureFixture[str]) -> None:
    decision = {
        "time": "2026-01-05T09:00:00Z",
        "kind": "DECISION_KIND_LIFECYCLE",
        "action": "PAUSE",
        "reason": "[bold]Hello[/bold] [FNAME]",
        "state_before": "IP_STATE_WARMING",
        "state_after": "IP_STATE_PAUSED",
        "quota_before": 50,
        "quota_after": 0,
    }
    render_decisions(Output(json_mode=False), {"decisions": [decision]})
    out = capsys.readouterr().out
    assert "[bold]Hello[/bold] [FNAME]" in out
    assert "warming -> paused" in out and "50 -> 0" in out


def test_json_mode_prints_the_answer_byte_for_byte(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.command import Api

    text = '{"address":"192.0.2.10","state":"IP_STATE_WARMING","note":"caf\\u00e9 \\u003c"}'
    Api(gateway=None, out=Output(json_mode=True), tenant="").show(Reply(text, {}), render_ip)  # type: ignore[arg-type]
    assert capsys.readouterr().out == text + "\n"
