"""The service's settings, its stored listing state and its messages: no I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emailengine.reputation.v1 import reputation_service_pb2 as pb
from libs.errors import InvalidArgument
from reputation import mapping
from reputation.adapters.dns_client import Nameserver
from reputation.adapters.repositories import listings_from_json, listings_to_json
from reputation.app.events import listing_changed
from reputation.app.zones import parse_choice
from reputation.config import DnsEnvSettings, ReputationSettings, build_config
from reputation.domain.checks import CheckKind, CheckResult, Verdict
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome, ListingStatus, interpret_answer
from reputation.domain.scan import (
    ChangeKind,
    Listing,
    ListingChange,
    ScanRecord,
    ScanResult,
    ZoneVerdict,
    publicize,
    slot_of,
)
from reputation.domain.validation import validate_tenant_id
from reputation.domain.zones import JUNKEMAILFILTER, SPAMHAUS_ZEN, Severity, ZoneKind

README = (Path(__file__).parents[3] / "README.md").read_text()


def config(**own: object):  # type: ignore[no-untyped-def]
    dns = own.pop("dns", {"nameservers": "127.0.0.1:5353"})
    return build_config(ReputationSettings(**own), DnsEnvSettings(**dns))  # type: ignore[arg-type]


def test_defaults() -> None:
    c = config()
    assert c.scan_interval == timedelta(hours=4) and c.scan_tick == timedelta(minutes=1)
    assert c.domain_check_interval == timedelta(hours=4)
    assert config(domain_check_interval_seconds=60).domain_check_interval == timedelta(minutes=1)
    assert len(c.default_ip_zones) == 9 and [z.key for z in c.default_domain_zones] == [
        "spamhaus-dbl",
        "surbl",
        "uribl",
    ]
    assert c.dns.timeout == 2.0 and str(c.dns.nameservers[0]) == "127.0.0.1:5353"


@pytest.mark.parametrize(
    ("own", "field"),
    [
        ({"scan_interval_seconds": 59}, "EE_REPUTATION_SCAN_INTERVAL_SECONDS"),
        ({"scan_interval_seconds": 8 * 86400}, "EE_REPUTATION_SCAN_INTERVAL_SECONDS"),
        ({"domain_check_interval_seconds": 59}, "EE_REPUTATION_DOMAIN_CHECK_INTERVAL_SECONDS"),
        ({"domain_check_interval_seconds": 8 * 86400}, "EE_REPUTATION_DOMAIN_CHECK_INTERVAL_SECONDS"),
        ({"zone_names": {"sorbs": "dnsbl.sorbs.net"}}, "EE_REPUTATION_ZONE_NAMES"),
        ({"zone_names": {"spamcop": "not a name"}}, "zone"),
        ({"zone_budgets": {"nope": {}}}, "EE_REPUTATION_ZONE_BUDGETS"),
        ({"ip_zones": "spamcop,spamhaus-dbl"}, "EE_REPUTATION_IP_ZONES[1]"),
        ({"domain_zones": "nope.example"}, "EE_REPUTATION_DOMAIN_ZONES[0]"),
    ],
)
def test_bad_settings_name_the_variable(own: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        config(**own)
    assert caught.value.violations[0].field == field


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EE_DNS_NAMESERVERS", "resolver.example:53"),
        ("EE_DNS_NAMESERVERS", "127.0.0.1:99999"),
        ("EE_DNS_TIMEOUT", "0"),
        ("EE_DNS_TIMEOUT", "61"),
        ("EE_DNS_TIMEOUT", "soon"),
    ],
)
def test_bad_dns_settings_stop_the_process_naming_the_variable(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reputation.config import load_config

    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit):
        load_config()
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"configuration error: {variable}: ")


def test_dns_settings_are_typed_and_read_once() -> None:
    dns = DnsEnvSettings(nameservers="127.0.0.1:5353, [::1]:5300", timeout=0.5)
    assert dns.nameservers == (Nameserver("127.0.0.1", 5353), Nameserver("::1", 5300)) and dns.timeout == 0.5
    resolver = dns.resolver()
    assert resolver.nameservers == dns.nameservers and resolver.timeout == 0.5 and resolver.check_timeout == 10.0
    assert DnsEnvSettings(nameservers="").resolver().nameservers  # empty: the system's resolvers


def test_scan_interval_down_to_one_minute_and_retargeted_zones() -> None:
    c = config(
        scan_interval_seconds=60,
        zone_names={"spamhaus-zen": "abc123.zen.dq.spamhaus.net"},
        ip_zones="zen.spamhaus.org, spamcop",
        zone_budgets={"mailspike": {"max_qps": 50, "max_queries": 100000}},
    )
    assert c.scan_interval == timedelta(minutes=1)
    assert [z.name for z in c.default_ip_zones] == ["abc123.zen.dq.spamhaus.net", "bl.spamcop.net"]
    assert c.budgets["mailspike"].max_qps == 50 and c.budgets["mailspike"].max_in_flight == 64


def test_tenant_zone_choice_names_every_bad_entry() -> None:
    c = config()
    with pytest.raises(InvalidArgument) as caught:
        parse_choice(c, ["spamcop", "bl.nowhere.example", "spamhaus-dbl", "bad name"], ["psbl"])
    assert [v.field for v in caught.value.violations] == [
        "ip_zones[1]",
        "ip_zones[2]",
        "ip_zones[3]",
        "domain_zones[0]",
    ]
    ip, domain = parse_choice(c, ["zen.spamhaus.org", "SPAMCOP", "spamhaus-zen"], [])
    assert [z.key for z in ip] == ["spamhaus-zen", "spamcop"] and domain == ()
    with pytest.raises(InvalidArgument):
        validate_tenant_id("Sos Expat")
    assert validate_tenant_id("sos-expat") == "sos-expat"


def test_listing_state_round_trips() -> None:
    since = datetime(2026, 1, 5, 9, tzinfo=UTC)
    result = interpret_answer(SPAMHAUS_ZEN, DnsAnswer(DnsOutcome.ANSWER, ("127.0.0.4",)), "XBL text")
    stored = {"spamhaus-zen": Listing(result, since)}
    back = listings_from_json(listings_to_json(stored))
    assert back == stored
    assert json.loads(listings_to_json(stored))["spamhaus-zen"]["codes"][0][0] == "127.0.0.4"


def test_messages_use_public_names_and_the_zones_own_severity() -> None:
    zen = SPAMHAUS_ZEN.retarget("secretkey.zen.dq.spamhaus.net")
    result = interpret_answer(zen, DnsAnswer(DnsOutcome.ANSWER, ("127.0.0.10",)), "PBL text")
    at = datetime(2026, 1, 5, tzinfo=UTC)
    scan = publicize(ScanResult("192.0.2.1", ZoneKind.IP, at, at, (result,)))
    record = ScanRecord.of(scan, "check")
    message = mapping.scan_record_to_proto(record)
    assert mapping.scan_record_from_proto(message) == record
    (zone,) = message.zones
    assert zone.zone == "zen.spamhaus.org" and "secretkey" not in str(message)
    assert zone.listing_severity == pb.LISTING_SEVERITY_HIGH and zone.severity == pb.SEVERITY_CRITICAL
    assert message.listed and message.complete and message.trigger == "check"
    white = interpret_answer(JUNKEMAILFILTER, DnsAnswer(DnsOutcome.ANSWER, ("127.0.0.1",)))
    shown = mapping.zone_verdict_to_proto(ZoneVerdict.of(white))
    assert shown.status == pb.LISTING_STATUS_WHITELISTED
    assert white.status is ListingStatus.ALLOWED and "white" in shown.meaning

    change = ListingChange(
        "192.0.2.1",
        "spamhaus-zen",
        zen.name,
        ChangeKind.DELISTED,
        Severity.HIGH,
        ("127.0.0.10",),
        "Spamhaus PBL",
        "",
        at,
    )
    event = listing_changed("sos-expat", change)
    assert (
        event.zone == "zen.spamhaus.org" and not event.listed and event.reason == "no longer listed; was: Spamhaus PBL"
    )
    assert event.severity == pb.LISTING_SEVERITY_HIGH and event.delist_url.startswith("https://")

    unknown = CheckResult(CheckKind.SPF, "192.0.2.1", Verdict.UNKNOWN, "timeout", {"record": "v=spf1 -all"})
    check = mapping.domain_check_to_proto(unknown)
    assert check.verdict == pb.CHECK_VERDICT_UNKNOWN and list(check.records) == ["v=spf1 -all"]
    assert mapping.domain_check_from_proto(check) == unknown


def test_scan_slots_are_consecutive_intervals() -> None:
    t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    four_hours = timedelta(hours=4)
    assert slot_of(t, four_hours) == slot_of(t + timedelta(hours=3, minutes=59), four_hours)
    assert slot_of(t + four_hours, four_hours) == slot_of(t, four_hours) + 1


def test_every_reputation_setting_is_in_the_readme() -> None:
    names = [f"EE_REPUTATION_{n.upper()}" for n in ReputationSettings.model_fields]
    names += [f"EE_DNS_{n.upper()}" for n in DnsEnvSettings.model_fields]
    assert [n for n in names if f"`{n}`" not in README] == []


def test_a_bad_setting_stops_the_process_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reputation.config import load_config

    monkeypatch.setenv("EE_REPUTATION_SCAN_INTERVAL_SECONDS", "30")
    with pytest.raises(SystemExit) as caught:
        load_config()
    assert caught.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "configuration error: EE_REPUTATION_SCAN_INTERVAL_SECONDS: must be between 1 minute and 7 days"
    )
