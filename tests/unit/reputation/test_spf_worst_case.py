"""The worst-case SPF lookup count over an in-memory zone: a record included twice counts each time it is reached,
as pyspf's own evaluation of a sender matching nothing shows."""

from __future__ import annotations

from reputation.adapters.spf_check import SpfChecker
from reputation.domain.checks import Verdict
from reputation.domain.spf_record import spf_verdict

SHARED = "v=spf1 a mx include:_net.shared.example a:relay.shared.example ?all"  # 4 lookups
ZONE: dict[tuple[str, str], list[object]] = {
    ("sender.example", "TXT"): [
        (b"v=spf1 ip4:192.0.2.10 include:_spf.esp.example include:_spf.mailwizz.example -all",),
    ],
    ("_spf.esp.example", "TXT"): [(b"v=spf1 ip4:198.51.100.0/24 include:_spf.shared.example ~all",)],
    ("_spf.mailwizz.example", "TXT"): [(b"v=spf1 include:_spf.shared.example ~all",)],
    ("_spf.shared.example", "TXT"): [(SHARED.encode(),)],
    ("_spf.shared.example", "A"): ["203.0.113.1"],
    ("_spf.shared.example", "MX"): [(10, "mx.shared.example")],
    ("mx.shared.example", "A"): ["203.0.113.2"],
    ("relay.shared.example", "A"): ["203.0.113.3"],
    ("_net.shared.example", "TXT"): [(b"v=spf1 ip4:203.0.113.0/24 ~all",)],
    ("loop.example", "TXT"): [(b"v=spf1 include:loop.example ip4:192.0.2.10 -all",)],
}


def lookup(name: str, qtype: str, strict: bool = True, timeout: float = 20.0) -> list[tuple[tuple[str, str], object]]:
    return [((name, qtype), value) for value in ZONE.get((name.lower(), qtype), [])]


def test_a_record_included_twice_counts_each_time_it_is_reached() -> None:
    checker = SpfChecker(lookup)
    # include esp (1) + include shared (1) + shared's 4, then include mailwizz (1) + include shared (1) + its 4 again.
    assert checker.worst_case_lookups("sender.example") == 12
    # The figure is what a receiver spends on a sender matching nothing: pyspf gives up past 10 (permerror).
    stranger = checker.evaluate("192.0.2.99", "bounce@sender.example", "sender.example")
    assert stranger.result == "permerror" and "Too many DNS lookups" in stranger.explanation
    passing = checker.check_host("192.0.2.10", "sender.example")  # matched before any include: passes
    assert passing.result == "pass" and passing.worst_case_lookups == 12
    verdict = spf_verdict("192.0.2.10", "sender.example", passing)
    assert verdict.verdict is Verdict.WARN and verdict.details["worst_case_dns_lookups"] == "12"
    assert "takes 12 DNS lookups (limit 10)" in verdict.reason


def test_a_loop_is_counted_once_and_stops() -> None:
    assert SpfChecker(lookup).worst_case_lookups("loop.example") == 1
