"""`emailengine simulate` on a short run (20 days, 3 IPs, the default scenario, seed 2026): the decisions every
scenario must produce through the services' real rules, the alerts per incident, MailWizz and PowerMTA following,
a valid PNG, and the same run for the same seed. ip-pool's use cases run on a throwaway SQLite file.

The default scenario for 20 days and 3 IPs: .11 gets Gmail's 421-4.7.28 on days 9-12; .12 is on Mailspike L1
(LOW) on days 5-9, then bounces 6 % on days 11-17; .13 is on Spamhaus SBL (CRITICAL) from day 8 to day 11."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from libs.cli import main
from simulation.chart import write_chart
from simulation.engine import IpDay, SimulatedDay, SimulationConfig, SimulationRun, simulate
from simulation.report import render, to_json

pytestmark = pytest.mark.integration

GMAIL_THROTTLED, LOW_THEN_BAD_WEEK, SBL = "192.0.2.11", "192.0.2.12", "192.0.2.13"


@pytest.fixture(scope="module")
def run() -> SimulationRun:
    return simulate(SimulationConfig(days=20, ips=3, seed=2026))


def _day(run: SimulationRun, number: int) -> SimulatedDay:
    return run.days[number - 1]


def _ip(run: SimulationRun, address: str, number: int) -> IpDay:
    return run.ip_days(address)[number - 1]


def _happened(run: SimulationRun, number: int, source: str, address: str) -> list[str]:
    return [
        f"{h.at:%H:%M} {h.what}" for h in _day(run, number).happenings if h.source == source and h.address == address
    ]


def test_the_sbl_listing_puts_the_ip_on_standby_the_day_the_scan_sees_it(run: SimulationRun) -> None:
    before = _ip(run, SBL, 7)
    listed = _ip(run, SBL, 8)
    assert listed.states == ["WARMING", "STANDBY"] and listed.end_quota == 0
    assert _happened(run, 8, "reputation", SBL) == [
        "13:00 listed on zen.spamhaus.org (CRITICAL: Spamhaus SBL: known spam source or spam operation)"
    ]
    quota = listed.quota
    assert _happened(run, 8, "MailWizz", SBL)[-1] == f"13:00 active {quota}/day -> inactive 1/day"
    assert _happened(run, 8, "PowerMTA", SBL) == ["13:00 pmta-1: out of pool tenant-sos-expat"]
    # It stopped sending at 13:00: less than the others that day, more than nothing.
    assert 0 < listed.sent < _ip(run, GMAIL_THROTTLED, 8).sent and before.sent == before.quota


def test_in_standby_the_warmup_holds_and_nothing_is_sent(run: SimulationRun) -> None:
    assert (_ip(run, SBL, 9).rule, _ip(run, SBL, 9).quota) == ("BLOCKLISTED", 0)
    for number in (10, 11, 12):
        ip = _ip(run, SBL, number)
        assert (ip.rule, ip.quota, ip.given, ip.sent) == ("NO_SENDING", 0, 0, 0), number
    assert _ip(run, SBL, 10).states == ["STANDBY"]


def test_after_the_delisting_and_the_cool_down_it_is_back_one_step_lower(run: SimulationRun) -> None:
    assert _happened(run, 11, "reputation", SBL)[0].startswith("13:00 delisted from zen.spamhaus.org")
    released = _ip(run, SBL, 12)
    assert released.states == ["STANDBY", "WARMING"]  # 24 h after the delisting was seen
    step_before = _ip(run, SBL, 8).quota
    one_lower = run.schedule[run.schedule.index(step_before) - 1]
    assert released.end_quota == one_lower
    assert _happened(run, 12, "MailWizz", SBL) == [f"13:00 inactive 1/day -> active {one_lower}/day"]
    assert _happened(run, 12, "PowerMTA", SBL) == ["13:00 pmta-1: into pool tenant-sos-expat"]
    back = _ip(run, SBL, 13)
    assert (back.state, back.quota, back.rule) == ("WARMING", one_lower, "NO_SENDING")  # the release day sent nothing
    assert _ip(run, SBL, 14).sent > 0


def test_the_bad_bounce_week_holds_then_steps_back(run: SimulationRun) -> None:
    before = [_ip(run, LOW_THEN_BAD_WEEK, n) for n in range(2, 12)]
    during = [_ip(run, LOW_THEN_BAD_WEEK, n) for n in range(12, 20)]  # decisions on the bad days' figures
    assert "BOUNCE_STEP_BACK" not in {ip.rule for ip in before}
    rules = [ip.rule for ip in during]
    assert "BOUNCE_STEP_BACK" in rules and rules.count("BOUNCE_STEP_BACK") >= 2
    assert rules[0] in ("BOUNCE_HOLD", "BOUNCE_STEP_BACK")
    assert min(ip.quota for ip in during) < _ip(run, LOW_THEN_BAD_WEEK, 11).quota
    assert all(ip.bounce_rate is not None and ip.bounce_rate > 0.03 for ip in run.ip_days(LOW_THEN_BAD_WEEK)[10:17])


def test_gmail_throttling_holds_gmails_cap_while_the_ip_goes_on(run: SimulationRun) -> None:
    for number in (10, 11, 12, 13):  # decided on the figures of days 9-12
        ip = _ip(run, GMAIL_THROTTLED, number)
        assert ip.held_caps.get("GMAIL") == ip.quota * 40 // 100, number  # held at the cap it had (Gmail's 40 %)
        assert ip.rule not in ("BOUNCE_STEP_BACK", "COMPLAINT_STEP_BACK") and ip.state == "WARMING"
    assert "GMAIL" not in _ip(run, GMAIL_THROTTLED, 9).held_caps
    assert all("GMAIL" not in ip.held_caps for ip in run.ip_days(GMAIL_THROTTLED)[14:])  # released once clean
    assert _ip(run, GMAIL_THROTTLED, 20).quota > _ip(run, GMAIL_THROTTLED, 10).quota  # the IP kept climbing


def test_each_incident_is_told_once_per_state_to_the_chats_its_severity_reaches(run: SimulationRun) -> None:
    told = {
        incident: [(a.state, a.severity, a.chats) for a in alerts]
        for incident, alerts in run.alerts_by_incident().items()
    }
    both, tenant = ("tenant chat", "admin chat"), ("tenant chat",)
    assert told == {
        f"ip-listing:{LOW_THEN_BAD_WEEK}:bl.mailspike.net": [
            ("listed:low", "warning", both),
            ("delisted", "info", tenant),
        ],
        f"ip-listing:{SBL}:zen.spamhaus.org": [("listed:critical", "critical", both), ("delisted", "info", tenant)],
        f"ip-state:{SBL}": [("standby", "warning", both), ("warming", "info", tenant)],
    }
    assert not any(alert.suppressed for alert in run.alerts())
    assert [alert.at.strftime("%H:%M") for alert in _day(run, 8).alerts] == ["13:00", "13:00"]


def test_the_low_listing_only_alerts(run: SimulationRun) -> None:
    assert all("STANDBY" not in ip.states for ip in run.ip_days(LOW_THEN_BAD_WEEK))
    assert "LISTING_HOLD" not in {ip.rule for ip in run.ip_days(LOW_THEN_BAD_WEEK)}
    assert _ip(run, LOW_THEN_BAD_WEEK, 8).quota == 200  # it went on warming while listed (days 5-9)


def test_mailwizz_and_powermta_start_with_every_ip_sending(run: SimulationRun) -> None:
    first = _day(run, 1)
    assert [h.what for h in first.happenings if h.source == "MailWizz"] == [
        *["new delivery server, inactive"] * 3,
        *["inactive 50/day -> active 50/day"] * 3,
    ]
    pools = sorted((h.what, h.address) for h in first.happenings if h.source == "PowerMTA")
    assert pools == [
        ("pmta-1: into pool tenant-sos-expat", "192.0.2.11"),
        ("pmta-1: into pool tenant-sos-expat", "192.0.2.13"),
        ("pmta-2: into pool tenant-sos-expat", "192.0.2.12"),
    ]


def test_the_report_prints_every_day_and_the_incidents(run: SimulationRun) -> None:
    text = render(run)
    assert len([line for line in text.splitlines() if line[:3].strip().isdigit()]) == 20
    assert "  8  Mon 01-12" in text and "200S" in text
    assert "13:00 PowerMTA   .13 pmta-1: out of pool tenant-sos-expat" in text
    assert f"ip-state:{SBL}: standby (tenant chat + admin chat), warming (tenant chat)" in text


def test_the_chart_is_a_png(run: SimulationRun, tmp_path: Path) -> None:
    path = write_chart(run, tmp_path / "charts" / "simulate.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width == 1600 and image.height > 700
        image.verify()


def test_the_same_seed_gives_the_same_run() -> None:
    def plain(seed: int) -> dict[str, object]:
        found = to_json(simulate(SimulationConfig(days=9, ips=3, seed=seed)))
        del found["seconds"]
        return found

    first = plain(7)
    assert first == plain(7)
    assert first != plain(8)


def test_the_command_prints_the_days_writes_the_chart_and_the_json_and_times_itself(tmp_path: Path) -> None:
    chart, decisions = tmp_path / "chart.png", tmp_path / "days.json"
    args = ["simulate", "--days", "4", "--ips", "2", "--seed", "5", "--scenario", "none"]
    result = CliRunner().invoke(main, [*args, "--chart", str(chart), "--json", str(decisions)])
    assert result.exit_code == 0, result.output
    assert "scenario: none" in result.output and "  4  Thu 01-08" in result.output
    assert f"chart: {chart}" in result.output and "wall time:" in result.output
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    days = json.loads(decisions.read_text())["days_simulated"]
    assert [day["number"] for day in days] == [1, 2, 3, 4]
    assert {ip["address"] for ip in days[-1]["ips"]} == {"192.0.2.11", "192.0.2.12"}
