"""Where a DNSBL answer is interpreted: query names, answer codes, zone health."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from reputation.domain.dnsbl import (
    DnsAnswer,
    DnsOutcome,
    ListingStatus,
    ZoneHealth,
    assess_zone_health,
    combine_names,
    interpret_answer,
    names_to_ask,
    probe_names,
    query_name,
    result_for_unhealthy,
    zone_covers,
)
from reputation.domain.zones import (
    JUNKEMAILFILTER,
    MAILSPIKE,
    PSBL,
    SPAMCOP,
    SPAMHAUS_DBL,
    SPAMHAUS_ZEN,
    SURBL,
    URIBL,
    CodeKind,
    Severity,
)

NX = DnsAnswer(DnsOutcome.NXDOMAIN)


def answer(*addresses: str) -> DnsAnswer:
    return DnsAnswer(DnsOutcome.ANSWER, addresses)


def test_ipv4_query_name_reverses_octets() -> None:
    assert query_name(SPAMHAUS_ZEN, ip_address("192.0.2.10")) == "10.2.0.192.zen.spamhaus.org"
    assert query_name(SPAMHAUS_ZEN, "192.0.2.10") == "10.2.0.192.zen.spamhaus.org"


def test_ipv6_query_name_reverses_nibbles() -> None:
    expected = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org"
    assert query_name(SPAMHAUS_ZEN, ip_address("2001:db8:1:2::5")) == expected


def test_domain_query_name() -> None:
    assert query_name(SPAMHAUS_DBL, "example.com") == "example.com.dbl.spamhaus.org"
    with pytest.raises(ValueError):
        query_name(SPAMHAUS_DBL, ip_address("192.0.2.1"))


# -- domain lists: registered domains (Public Suffix List), and hosts where the list lists hosts -------------


@pytest.mark.parametrize(
    ("zone", "target", "names"),
    [
        (SURBL, "click.example.com", ("example.com",)),
        (URIBL, "click.example.com", ("example.com",)),
        (SPAMHAUS_DBL, "click.example.com", ("example.com", "click.example.com")),
        (SPAMHAUS_DBL, "example.com", ("example.com",)),
        (SURBL, "a.b.example.co.uk", ("example.co.uk",)),  # two-level public suffix
        (SPAMHAUS_DBL, "news.example.co.uk", ("example.co.uk", "news.example.co.uk")),
        (URIBL, "shop.tenant.blogspot.com", ("tenant.blogspot.com",)),  # the list's private section counts
        (SURBL, "links.sos-expat.example", ("sos-expat.example",)),  # unknown suffix: the default rule, 2 labels
    ],
)
def test_domain_lists_are_asked_for_the_registered_domain_and_listed_hosts(
    zone: object, target: str, names: tuple[str, ...]
) -> None:
    assert names_to_ask(zone, target) == names  # type: ignore[arg-type]


def test_ip_lists_are_asked_for_the_address_alone() -> None:
    assert names_to_ask(SPAMHAUS_ZEN, ip_address("192.0.2.1")) == (ip_address("192.0.2.1"),)


def test_a_host_is_listed_when_its_registered_domain_is() -> None:
    listed = interpret_answer(SURBL, answer("127.0.0.64"), "abuse seen")
    result = combine_names("click.example.com", [("example.com", listed)])
    assert result.status is ListingStatus.LISTED and result.listed_as == "example.com"
    assert result.summary() == (
        "listed on multi.surbl.org as example.com: SURBL ABUSE: spam and abuse site (abuse seen)"
    )
    assert result.detail == "example.com is listed, the registered domain of click.example.com"


def test_combining_a_host_and_its_registered_domain() -> None:
    clean = interpret_answer(SPAMHAUS_DBL, NX)
    host = interpret_answer(SPAMHAUS_DBL, answer("127.0.1.102"))  # abused legitimate host: HIGH
    domain = interpret_answer(SPAMHAUS_DBL, answer("127.0.1.2"))  # spam domain: CRITICAL
    only_host = combine_names("click.example.com", [("example.com", clean), ("click.example.com", host)])
    assert only_host == host and only_host.listed_as == ""  # the target itself is listed
    worst = combine_names("click.example.com", [("example.com", domain), ("click.example.com", host)])
    assert worst.severity is Severity.CRITICAL and worst.listed_as == "example.com"
    timeout = interpret_answer(SPAMHAUS_DBL, DnsAnswer(DnsOutcome.TIMEOUT))
    unsure = combine_names("click.example.com", [("example.com", timeout), ("click.example.com", clean)])
    assert unsure.status is ListingStatus.UNKNOWN  # a listing could hide behind the unanswered name
    assert combine_names("click.example.com", [("example.com", clean), ("click.example.com", clean)]) == clean


def test_zone_coverage() -> None:
    assert zone_covers(SPAMHAUS_ZEN, ip_address("2001:db8::1"))
    assert not zone_covers(SPAMCOP, ip_address("2001:db8::1"))
    assert zone_covers(SPAMCOP, ip_address("192.0.2.1"))
    assert not zone_covers(SPAMCOP, "example.com") and zone_covers(SURBL, "example.com")


def test_probe_names() -> None:
    assert probe_names(SPAMCOP) == ("2.0.0.127.bl.spamcop.net", "1.0.0.127.bl.spamcop.net")
    assert probe_names(SPAMHAUS_DBL) == ("dbltest.com.dbl.spamhaus.org", "invalid.dbl.spamhaus.org")


def test_nxdomain_and_empty_answers_are_not_listed() -> None:
    assert interpret_answer(SPAMCOP, NX).status is ListingStatus.NOT_LISTED
    assert interpret_answer(SPAMCOP, DnsAnswer(DnsOutcome.NODATA)).status is ListingStatus.NOT_LISTED


@pytest.mark.parametrize("outcome", [DnsOutcome.TIMEOUT, DnsOutcome.SERVFAIL, DnsOutcome.REFUSED, DnsOutcome.ERROR])
def test_resolver_failures_are_unknown_never_clean(outcome: DnsOutcome) -> None:
    result = interpret_answer(SPAMCOP, DnsAnswer(outcome, detail="from 127.0.0.1:53"))
    assert result.status is ListingStatus.UNKNOWN and not result.status.is_definitive
    assert "127.0.0.1:53" in result.detail


def test_a_listing_with_its_meaning_severity_and_reason() -> None:
    result = interpret_answer(SPAMHAUS_ZEN, answer("127.0.0.4", "127.0.0.10"), "see https://x")
    assert result.status is ListingStatus.LISTED and result.severity is Severity.CRITICAL
    assert [c.address for c in result.codes] == ["127.0.0.4", "127.0.0.10"]
    assert result.reason == "see https://x"
    assert "XBL" in result.summary() and "PBL" in result.summary()


@pytest.mark.parametrize("code", ["127.255.255.254", "127.255.255.255", "127.255.255.252", "127.255.255.7"])
def test_spamhaus_127_255_255_is_an_error_not_a_listing(code: str) -> None:
    result = interpret_answer(SPAMHAUS_ZEN, answer(code))
    assert result.status is ListingStatus.ZONE_ERROR and not result.listed
    assert code in result.detail


def test_dbl_refuses_ip_queries_with_an_error_code() -> None:
    assert interpret_answer(SPAMHAUS_DBL, answer("127.0.1.255")).status is ListingStatus.ZONE_ERROR


def test_answers_outside_loopback_mean_a_broken_zone() -> None:
    result = interpret_answer(SPAMCOP, answer("198.51.100.80"))
    assert result.status is ListingStatus.ZONE_ERROR and "outside 127.0.0.0/8" in result.detail


def test_undocumented_codes_still_list() -> None:
    result = interpret_answer(PSBL, answer("127.0.0.9"))
    assert result.status is ListingStatus.LISTED and result.severity is PSBL.unknown_code_severity
    assert "undocumented" in result.codes[0].meaning


def test_junkemailfilter_whitelist_and_neutral_codes() -> None:
    white = interpret_answer(JUNKEMAILFILTER, answer("127.0.0.1"))
    assert white.status is ListingStatus.ALLOWED and white.status.is_definitive
    yellow = interpret_answer(JUNKEMAILFILTER, answer("127.0.0.3", "127.0.1.1"))
    assert yellow.status is ListingStatus.NOT_LISTED and len(yellow.codes) == 2
    black = interpret_answer(JUNKEMAILFILTER, answer("127.0.0.2", "127.0.1.1"))
    assert black.status is ListingStatus.LISTED and black.severity is Severity.HIGH


def test_mailspike_reputation_codes() -> None:
    assert interpret_answer(MAILSPIKE, answer("127.0.0.10")).severity is Severity.HIGH
    assert interpret_answer(MAILSPIKE, answer("127.0.0.14")).severity is Severity.LOW
    assert interpret_answer(MAILSPIKE, answer("127.0.0.18")).status is ListingStatus.ALLOWED
    assert interpret_answer(MAILSPIKE, answer("127.0.0.15")).status is ListingStatus.NOT_LISTED


def test_bitmask_zones_decode_every_bit() -> None:
    result = interpret_answer(URIBL, answer("127.0.0.14"))
    assert result.status is ListingStatus.LISTED
    assert sorted(c.meaning.split(":")[0] for c in result.codes) == ["URIBL black", "URIBL grey", "URIBL red"]
    assert result.severity is Severity.HIGH
    both = interpret_answer(SURBL, answer("127.0.0.80"))
    assert {c.address for c in both.codes} == {"16", "64"}
    odd = interpret_answer(SURBL, answer("127.0.0.3"))  # bits 1 and 2 are undocumented for SURBL
    assert odd.listed and "undocumented bits 3" in odd.codes[0].meaning


def test_uribl_and_surbl_refusal_is_an_error() -> None:
    assert interpret_answer(URIBL, answer("127.0.0.1")).status is ListingStatus.ZONE_ERROR
    assert interpret_answer(SURBL, answer("127.0.0.1")).status is ListingStatus.ZONE_ERROR


class TestZoneHealth:
    def test_healthy(self) -> None:
        assert assess_zone_health(SPAMCOP, answer("127.0.0.2"), NX) == ZoneHealth("spamcop", "bl.spamcop.net", True)

    def test_listing_the_world(self) -> None:
        health = assess_zone_health(SPAMCOP, answer("127.0.0.2"), answer("127.0.0.2"))
        assert not health.healthy and "listing the world" in health.reason and not health.no_answer

    def test_dead_list(self) -> None:
        health = assess_zone_health(SPAMCOP, NX, NX)
        assert not health.healthy and "does not list its test point 127.0.0.2" in health.reason

    def test_error_answers(self) -> None:
        health = assess_zone_health(SPAMHAUS_ZEN, answer("127.255.255.254"), answer("127.255.255.254"))
        assert not health.healthy and "public/open resolver" in health.reason

    def test_wildcard_outside_loopback(self) -> None:
        health = assess_zone_health(SPAMCOP, answer("198.51.100.80"), answer("198.51.100.80"))
        assert not health.healthy and "outside 127.0.0.0/8" in health.reason

    def test_no_answer(self) -> None:
        health = assess_zone_health(SPAMCOP, DnsAnswer(DnsOutcome.TIMEOUT, detail="2 s"), NX)
        assert not health.healthy and health.no_answer and "timeout" in health.reason

    def test_whitelist_answer_for_the_clean_point_is_fine(self) -> None:
        assert assess_zone_health(JUNKEMAILFILTER, answer("127.0.0.2"), answer("127.0.0.1")).healthy

    def test_unhealthy_zone_results(self) -> None:
        dead = assess_zone_health(SPAMCOP, NX, NX)
        assert result_for_unhealthy(SPAMCOP, dead).status is ListingStatus.SKIPPED
        silent = assess_zone_health(SPAMCOP, DnsAnswer(DnsOutcome.TIMEOUT), NX)
        assert result_for_unhealthy(SPAMCOP, silent).status is ListingStatus.UNKNOWN
        assert result_for_unhealthy(SPAMCOP, None).status is ListingStatus.SKIPPED


def test_code_kinds_cover_every_status() -> None:
    assert {c.kind for z in (SPAMHAUS_ZEN, JUNKEMAILFILTER, MAILSPIKE) for c in z.codes.values()} == set(CodeKind)
