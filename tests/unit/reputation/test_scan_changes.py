"""Listed/delisted changes: each real change once; undetermined answers change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emailengine.reputation.v1 import reputation_service_pb2 as pb
from libs.errors import InvalidArgument
from reputation.app.events import listing_changed
from reputation.domain.checks import Verdict
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome, ListingStatus, ZoneResult, interpret_answer
from reputation.domain.scan import (
    DEFAULT_SCAN_INTERVAL,
    ChangeKind,
    ListingState,
    ScanResult,
    apply_scan,
    blocklist_check,
    diff_scans,
    scan_due,
    validate_scan_interval,
)
from reputation.domain.zones import JUNKEMAILFILTER, MAILSPIKE, SPAMCOP, SPAMHAUS_ZEN, Severity, ZoneKind

T0 = datetime(2026, 1, 5, tzinfo=UTC)
IP = "192.0.2.10"


def listed(zone=SPAMCOP, code: str = "127.0.0.2") -> ZoneResult:
    return interpret_answer(zone, DnsAnswer(DnsOutcome.ANSWER, (code,)), "reason text")


def clean(zone=SPAMCOP) -> ZoneResult:
    return interpret_answer(zone, DnsAnswer(DnsOutcome.NXDOMAIN))


def unknown(zone=SPAMCOP) -> ZoneResult:
    return interpret_answer(zone, DnsAnswer(DnsOutcome.TIMEOUT))


def scan_of(*results: ZoneResult, minutes: int = 0) -> ScanResult:
    at = T0 + timedelta(minutes=minutes)
    return ScanResult(IP, ZoneKind.IP, at, at, results)


def test_first_scan_reports_existing_listings() -> None:
    state, changes = apply_scan(None, scan_of(listed(), clean(SPAMHAUS_ZEN)))
    assert [(c.kind, c.zone_key) for c in changes] == [(ChangeKind.LISTED, "spamcop")]
    assert changes[0].reason == "reason text" and changes[0].codes == ("127.0.0.2",)
    assert changes[0].severity is Severity.HIGH and changes[0].observed_at == T0
    assert state.zones == {"spamcop"}


def test_a_listing_that_escalates_on_the_same_zone_is_news_once() -> None:
    l1, l4 = listed(MAILSPIKE, "127.0.0.14"), listed(MAILSPIKE, "127.0.0.11")  # Mailspike L1 (LOW), L4 (HIGH)
    state, changes = apply_scan(None, scan_of(l1))
    assert [(c.kind, c.severity, c.previous_severity) for c in changes] == [(ChangeKind.LISTED, Severity.LOW, None)]
    state, changes = apply_scan(state, scan_of(l4, minutes=1))
    assert [(c.kind, c.severity, c.previous_severity) for c in changes] == [
        (ChangeKind.LISTED, Severity.HIGH, Severity.LOW)
    ]
    assert apply_scan(state, scan_of(l4, minutes=2))[1] == []  # still L4: nothing new
    state, changes = apply_scan(state, scan_of(l1, minutes=3))
    assert changes == [] and state.listed["mailspike"].severity is Severity.LOW  # better, still listed: kept quietly
    state, changes = apply_scan(state, scan_of(l4, minutes=4))
    assert [c.previous_severity for c in changes] == [Severity.LOW]  # worse again: news again
    _, changes = apply_scan(state, scan_of(clean(MAILSPIKE), minutes=5))
    assert [(c.kind, c.severity) for c in changes] == [(ChangeKind.DELISTED, Severity.HIGH)]


def test_the_event_says_what_escalated_and_which_lists_still_list() -> None:
    state, _ = apply_scan(None, scan_of(listed(MAILSPIKE, "127.0.0.14"), listed(SPAMCOP)))
    _, (escalation,) = apply_scan(state, scan_of(listed(MAILSPIKE, "127.0.0.11"), listed(SPAMCOP), minutes=1))
    event = listing_changed("sos-expat", escalation, ["mailspike", "spamcop"])
    assert event.listed and event.severity == pb.LISTING_SEVERITY_HIGH
    assert event.previous_severity == pb.LISTING_SEVERITY_LOW
    assert event.reason == "now high (was low): Mailspike L4: very bad reputation (reason text)"
    assert list(event.still_listed_on) == ["bl.spamcop.net"]
    _, (delisted,) = apply_scan(state, scan_of(clean(MAILSPIKE), listed(SPAMCOP), minutes=2))
    gone = listing_changed("sos-expat", delisted, ["spamcop"])
    assert not gone.listed and gone.previous_severity == pb.LISTING_SEVERITY_UNSPECIFIED
    assert list(gone.still_listed_on) == ["bl.spamcop.net"]  # delisted from one list is not a clean IP


def test_each_change_once() -> None:
    sequence = [
        scan_of(clean()),
        scan_of(listed(), minutes=1),
        scan_of(listed(), minutes=2),
        scan_of(clean(), minutes=3),
        scan_of(clean(), minutes=4),
    ]
    state: ListingState | None = None
    kinds = []
    for scan in sequence:
        state, changes = apply_scan(state, scan)
        kinds += [c.kind for c in changes]
    assert kinds == [ChangeKind.LISTED, ChangeKind.DELISTED]


@pytest.mark.parametrize("status", [ListingStatus.UNKNOWN, ListingStatus.ZONE_ERROR, ListingStatus.SKIPPED])
def test_undetermined_answers_change_nothing(status: ListingStatus) -> None:
    gap = ZoneResult("spamcop", "bl.spamcop.net", status, detail="no verdict")
    state, _ = apply_scan(None, scan_of(listed()))
    state, changes = apply_scan(state, scan_of(gap, minutes=1))
    assert changes == [] and state.zones == {"spamcop"}
    state, changes = apply_scan(state, scan_of(listed(), minutes=2))
    assert changes == []


def test_a_zone_missing_from_a_scan_keeps_its_listing() -> None:
    state, _ = apply_scan(None, scan_of(listed(), listed(SPAMHAUS_ZEN)))
    state, changes = apply_scan(state, scan_of(clean(SPAMHAUS_ZEN), minutes=1))
    assert [(c.kind, c.zone_key) for c in changes] == [(ChangeKind.DELISTED, "spamhaus-zen")]
    assert state.zones == {"spamcop"}


def test_a_whitelist_answer_delists() -> None:
    state, _ = apply_scan(None, scan_of(listed(JUNKEMAILFILTER)))
    white = interpret_answer(JUNKEMAILFILTER, DnsAnswer(DnsOutcome.ANSWER, ("127.0.0.1",)))
    _, changes = apply_scan(state, scan_of(white, minutes=1))
    assert [c.kind for c in changes] == [ChangeKind.DELISTED]
    assert changes[0].codes == ("127.0.0.2",)  # what it was listed for


def test_state_of_another_target_is_refused() -> None:
    with pytest.raises(ValueError):
        apply_scan(ListingState("192.0.2.99"), scan_of(clean()))


def test_diff_scans_and_its_stated_limit() -> None:
    first, gap, again = scan_of(listed()), scan_of(unknown(), minutes=1), scan_of(listed(), minutes=2)
    assert diff_scans(None, first)[0].kind is ChangeKind.LISTED
    assert diff_scans(first, gap) == []
    assert [c.kind for c in diff_scans(first, scan_of(clean(), minutes=3))] == [ChangeKind.DELISTED]
    # listed → unknown → listed: comparing the last two scans reports LISTED again (use apply_scan)
    assert [c.kind for c in diff_scans(gap, again)] == [ChangeKind.LISTED]


def test_dedup_key_is_stable() -> None:
    _, (change,) = apply_scan(None, scan_of(listed()))
    assert change.dedup_key == f"{IP}|spamcop|listed|{T0.isoformat()}"


def test_scan_result_helpers() -> None:
    result = scan_of(listed(), unknown(SPAMHAUS_ZEN))
    assert result.is_listed and not result.complete
    assert [r.zone_key for r in result.undetermined] == ["spamhaus-zen"]
    assert result.worst_severity is Severity.HIGH and result.result_for("nope") is None


def test_scan_interval_and_due() -> None:
    assert timedelta(hours=4) == DEFAULT_SCAN_INTERVAL
    assert validate_scan_interval(timedelta(minutes=1)) == timedelta(minutes=1)
    with pytest.raises(InvalidArgument) as exc:
        validate_scan_interval(timedelta(seconds=30))
    assert exc.value.violations[0].field == "scan_interval"
    assert scan_due(None, DEFAULT_SCAN_INTERVAL, T0)
    assert not scan_due(T0, DEFAULT_SCAN_INTERVAL, T0 + timedelta(hours=3, minutes=59))
    assert scan_due(T0, DEFAULT_SCAN_INTERVAL, T0 + timedelta(hours=4))


def test_blocklist_check_verdicts() -> None:
    assert blocklist_check(scan_of(clean(), clean(SPAMHAUS_ZEN))).verdict is Verdict.PASS
    failed = blocklist_check(scan_of(listed(), clean(SPAMHAUS_ZEN)))
    assert failed.verdict is Verdict.FAIL and "listed on bl.spamcop.net" in failed.reason
    brown = blocklist_check(scan_of(listed(JUNKEMAILFILTER, "127.0.0.4")))
    assert brown.verdict is Verdict.WARN
    gap = blocklist_check(scan_of(clean(), unknown(SPAMHAUS_ZEN)))
    assert gap.verdict is Verdict.UNKNOWN and "zen.spamhaus.org" in gap.reason
    assert blocklist_check(scan_of()).verdict is Verdict.UNKNOWN
