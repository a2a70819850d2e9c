"""Blocklist scans against a real rbldnsd: every kind of answer, listing changes, budgets, a dead server."""

from __future__ import annotations

import asyncio
import time

import pytest

from libs.errors import InvalidArgument
from reputation.adapters.dns_client import UdpDnsClient, parse_nameservers
from reputation.adapters.dnsbl_scanner import DnsblScanner, ZoneBudget
from reputation.domain.dnsbl import ListingStatus
from reputation.domain.scan import ChangeKind, ListingState, apply_scan
from reputation.domain.zones import (
    DEFAULT_CATALOGUE,
    DEFAULT_DOMAIN_ZONES,
    DEFAULT_IP_ZONES,
    SPAMCOP,
    SPAMHAUS_ZEN,
    CodeKind,
    Severity,
)
from tests.harness.dns_servers import Rbldnsd, closed_port, silent_nameserver
from tests.integration.reputation.conftest import (
    BROWN_IP,
    CLEAN_IP,
    CLEAN_V6,
    DEAD_ZONE,
    ERROR_ZONE,
    LISTED_IP,
    LISTED_V6,
    MAILSPIKE_L4_IP,
    RESOLVER_ERROR_IP,
    SPAMRATS_NOPTR_IP,
    UNSERVED_ZONE,
    WHITELISTED_IP,
    WILDCARD_ZONE,
    WORLD_ZONE,
    scan,
)

pytestmark = pytest.mark.integration


def statuses(result) -> dict[str, ListingStatus]:
    return {r.zone_key: r.status for r in result.results}


def test_the_nine_default_zones_pass_their_health_check(rbl: Rbldnsd) -> None:
    async def run():
        async with UdpDnsClient(parse_nameservers(rbl.nameserver), timeout=1.0) as client:
            return await DnsblScanner(client).check_health(DEFAULT_IP_ZONES + DEFAULT_DOMAIN_ZONES)

    health = asyncio.run(run())
    assert len(health) == 12
    assert all(h.healthy for h in health.values()), [h for h in health.values() if not h.healthy]


def test_listed_ip_gets_each_lists_meaning_and_txt_reason(rbl: Rbldnsd) -> None:
    (result,) = scan(rbl.nameserver, [LISTED_IP], DEFAULT_IP_ZONES)
    zen = result.result_for("spamhaus-zen")
    assert zen is not None and zen.status is ListingStatus.LISTED
    assert [c.address for c in zen.codes] == ["127.0.0.4"]
    assert "XBL" in zen.codes[0].meaning and zen.severity is Severity.CRITICAL
    assert zen.reason == f"Listed in XBL, see https://check.spamhaus.org/query/ip/{LISTED_IP}"
    spamcop = result.result_for("spamcop")
    assert spamcop is not None and spamcop.listed and LISTED_IP in spamcop.reason
    assert {r.zone_key for r in result.listings} == {"spamhaus-zen", "spamcop"}
    assert result.complete and result.is_listed and result.worst_severity is Severity.CRITICAL
    assert len(result.results) == 9


def test_clean_ip_is_clean_on_every_zone(rbl: Rbldnsd) -> None:
    (result,) = scan(rbl.nameserver, [CLEAN_IP], DEFAULT_IP_ZONES)
    assert set(statuses(result).values()) == {ListingStatus.NOT_LISTED}
    assert result.complete and not result.is_listed


def test_list_specific_codes(rbl: Rbldnsd) -> None:
    noptr, l4, brown = scan(rbl.nameserver, [SPAMRATS_NOPTR_IP, MAILSPIKE_L4_IP, BROWN_IP], DEFAULT_IP_ZONES)
    rats = noptr.result_for("spamrats")
    assert rats is not None and rats.listed and "no reverse DNS" in rats.codes[0].meaning
    assert rats.reason == f"RATS-NoPtr {SPAMRATS_NOPTR_IP}"
    spike = l4.result_for("mailspike")
    assert spike is not None and spike.listed and "L4" in spike.codes[0].meaning and spike.severity is Severity.HIGH
    karma = brown.result_for("junkemailfilter")
    assert karma is not None and karma.listed and karma.severity is Severity.LOW


def test_spamhaus_error_code_is_an_error_not_a_listing(rbl: Rbldnsd) -> None:
    (result,) = scan(rbl.nameserver, [RESOLVER_ERROR_IP], DEFAULT_IP_ZONES)
    zen = result.result_for("spamhaus-zen")
    assert zen is not None and zen.status is ListingStatus.ZONE_ERROR
    assert "127.255.255.254" in zen.detail and "public/open resolver" in zen.detail
    assert not result.is_listed and not result.complete


def test_junkemailfilter_whitelist_is_not_a_listing(rbl: Rbldnsd) -> None:
    (result,) = scan(rbl.nameserver, [WHITELISTED_IP], DEFAULT_IP_ZONES)
    karma = result.result_for("junkemailfilter")
    assert karma is not None and karma.status is ListingStatus.ALLOWED
    assert karma.codes[0].kind is CodeKind.ALLOW
    assert not result.is_listed and result.complete


def test_ipv6_nibbles_on_zones_that_list_ipv6(rbl: Rbldnsd) -> None:
    listed, clean = scan(rbl.nameserver, [LISTED_V6, CLEAN_V6], DEFAULT_IP_ZONES)
    assert [r.zone_key for r in listed.results] == ["spamhaus-zen"]  # the others do not list IPv6
    zen = listed.results[0]
    assert zen.listed and "CSS" in zen.codes[0].meaning and zen.reason == f"CSS listing of {LISTED_V6}"
    assert statuses(clean) == {"spamhaus-zen": ListingStatus.NOT_LISTED}


def test_a_zone_listing_the_world_is_unhealthy_and_ignored(rbl: Rbldnsd) -> None:
    (result,) = scan(rbl.nameserver, [CLEAN_IP], [SPAMHAUS_ZEN, WORLD_ZONE])
    health = {h.zone_key: h for h in result.zone_health}
    assert not health["spamcop"].healthy and "listing the world" in health["spamcop"].reason
    spamcop = result.result_for("spamcop")
    assert spamcop is not None and spamcop.status is ListingStatus.SKIPPED
    assert "listing the world" in spamcop.detail
    assert not result.is_listed
    assert statuses(result)["spamhaus-zen"] is ListingStatus.NOT_LISTED


@pytest.mark.parametrize(
    ("zone", "words"),
    [
        (ERROR_ZONE, "public/open resolver"),
        (DEAD_ZONE, "does not list its test point 127.0.0.2"),
        (WILDCARD_ZONE, "outside 127.0.0.0/8"),
    ],
    ids=["error-code-everywhere", "dead", "wildcard-outside-127"],
)
def test_broken_zones_are_unhealthy_and_their_answers_ignored(rbl: Rbldnsd, zone, words: str) -> None:
    (result,) = scan(rbl.nameserver, [LISTED_IP], [zone])
    (health,) = result.zone_health
    assert not health.healthy and words in health.reason and not health.no_answer
    (only,) = result.results
    assert only.status is ListingStatus.SKIPPED and words in only.detail


def test_a_zone_the_server_refuses_is_unknown_with_the_reason(rbl: Rbldnsd) -> None:
    (result,) = scan(rbl.nameserver, [LISTED_IP], [UNSERVED_ZONE])
    (health,) = result.zone_health
    assert not health.healthy and health.no_answer and "REFUSED" in health.reason
    (only,) = result.results
    assert only.status is ListingStatus.UNKNOWN and "REFUSED" in only.detail


def test_domain_lists(rbl: Rbldnsd) -> None:
    targets = ["spammy.example", "abused.example", "phish.example", "both.example", "grey.example", "clean.example"]
    spammy, abused, phish, both, grey, clean = scan(rbl.nameserver, targets, DEFAULT_DOMAIN_ZONES)
    dbl = spammy.result_for("spamhaus-dbl")
    assert (
        dbl is not None
        and dbl.listed
        and dbl.severity is Severity.CRITICAL
        and dbl.reason == "Spam domain spammy.example"
    )
    abused_dbl = abused.result_for("spamhaus-dbl")
    assert abused_dbl is not None and abused_dbl.listed and "abused legitimate" in abused_dbl.codes[0].meaning
    surbl = phish.result_for("surbl")
    assert surbl is not None and surbl.listed and "phishing" in surbl.codes[0].meaning
    both_surbl = both.result_for("surbl")
    assert both_surbl is not None and sorted(c.meaning.split(":")[0] for c in both_surbl.codes) == [
        "SURBL ABUSE",
        "SURBL MW",
    ]
    uribl = grey.result_for("uribl")
    assert uribl is not None and uribl.listed and uribl.severity is Severity.LOW
    assert set(statuses(clean).values()) == {ListingStatus.NOT_LISTED} and clean.complete
    assert all(r.kind.value == "domain" for r in (spammy, clean))


def test_a_silent_resolver_gives_unknown_within_the_timeout() -> None:
    with silent_nameserver() as nameserver:
        start = time.monotonic()
        (result,) = scan(nameserver, [LISTED_IP], DEFAULT_IP_ZONES, timeout=0.4)
        elapsed = time.monotonic() - start
    assert elapsed < 1.5
    assert {r.status for r in result.results} == {ListingStatus.UNKNOWN}
    assert all("timeout" in r.detail for r in result.results)
    assert not result.is_listed and not result.complete


def test_a_closed_port_gives_unknown_with_the_reason() -> None:
    (result,) = scan(closed_port(), [LISTED_IP], [SPAMHAUS_ZEN], timeout=0.4)
    (only,) = result.results
    assert only.status is ListingStatus.UNKNOWN and "refused" in only.detail.lower()


def test_a_slow_zone_mid_scan_is_unknown_not_clean(rbl: Rbldnsd) -> None:
    """Health passes, then the answers stop: the scan results are UNKNOWN, never NOT_LISTED."""

    async def run():
        async with UdpDnsClient(parse_nameservers(rbl.nameserver), timeout=0.3) as client:
            scanner = DnsblScanner(client)
            health = await scanner.check_health([SPAMHAUS_ZEN])
        with silent_nameserver() as dead:
            async with UdpDnsClient(parse_nameservers(dead), timeout=0.3) as client:
                return await DnsblScanner(client).scan([CLEAN_IP], [SPAMHAUS_ZEN], health=health)

    (result,) = asyncio.run(run())
    (only,) = result.results
    assert only.status is ListingStatus.UNKNOWN and "timeout" in only.detail


def test_a_listing_added_while_running_is_one_listed_event_and_removal_one_delisted() -> None:
    server = Rbldnsd()
    base = ["127.0.0.2 :127.0.0.2:test point"]
    server.add_dataset(SPAMCOP.name, "ip4set", "spamcop", base)
    with server:
        state: ListingState | None = None
        events = []

        def cycle() -> None:
            nonlocal state
            (result,) = scan(server.nameserver, [CLEAN_IP], [SPAMCOP])
            state, changes = apply_scan(state, result)
            events.extend(changes)

        cycle()
        assert events == []
        server.add_entry("spamcop", f"{CLEAN_IP} :127.0.0.2:Blocked - reported $")
        cycle()
        cycle()  # still listed: no second event
        assert [(e.kind, e.zone_key, e.target) for e in events] == [(ChangeKind.LISTED, "spamcop", CLEAN_IP)]
        assert events[0].reason == f"Blocked - reported {CLEAN_IP}" and events[0].codes == ("127.0.0.2",)
        server.remove_entry("spamcop", CLEAN_IP)
        cycle()
        cycle()
        assert [e.kind for e in events] == [ChangeKind.LISTED, ChangeKind.DELISTED]
        assert state is not None and not state.listed


def test_an_outage_between_scans_neither_delists_nor_relists() -> None:
    server = Rbldnsd()
    server.add_dataset(SPAMCOP.name, "ip4set", "spamcop", ["127.0.0.2", LISTED_IP])
    with server:
        (first,) = scan(server.nameserver, [LISTED_IP], [SPAMCOP])
        state, changes = apply_scan(None, first)
        assert [c.kind for c in changes] == [ChangeKind.LISTED]
        with silent_nameserver() as dead:
            (outage,) = scan(dead, [LISTED_IP], [SPAMCOP], timeout=0.3)
        state, changes = apply_scan(state, outage)
        assert changes == [] and "spamcop" in state.listed
        (again,) = scan(server.nameserver, [LISTED_IP], [SPAMCOP])
        state, changes = apply_scan(state, again)
        assert changes == []


def test_query_budgets_bound_a_scan(rbl: Rbldnsd) -> None:
    ips = [f"198.51.100.{i}" for i in range(1, 41)]
    start = time.monotonic()
    results = scan(
        rbl.nameserver,
        ips,
        [SPAMHAUS_ZEN, SPAMCOP],
        budgets={"spamcop": ZoneBudget(max_in_flight=4, max_queries=10), "spamhaus-zen": ZoneBudget(max_qps=200)},
    )
    elapsed = time.monotonic() - start
    spamcop = [r.result_for("spamcop") for r in results]
    assert sum(1 for r in spamcop if r and r.status is ListingStatus.NOT_LISTED) == 10
    skipped = [r for r in spamcop if r and r.status is ListingStatus.SKIPPED]
    assert len(skipped) == 30 and "budget" in skipped[0].detail
    assert all(r.result_for("spamhaus-zen").status is ListingStatus.NOT_LISTED for r in results)  # type: ignore[union-attr]
    assert elapsed >= 40 / 200 * 0.9  # paced at 200 questions/s


def test_bad_input_names_the_field(rbl: Rbldnsd) -> None:
    with pytest.raises(InvalidArgument) as bad_target:
        scan(rbl.nameserver, ["192.0.2.300", CLEAN_IP, "not a host"], DEFAULT_IP_ZONES)
    assert [v.field for v in bad_target.value.violations] == ["targets[0]", "targets[2]"]
    with pytest.raises(InvalidArgument) as bad_zone:
        DEFAULT_CATALOGUE.select(["zen.spamhaus.org", "dnsbl.sorbs.net", "bad zone"])
    assert [v.field for v in bad_zone.value.violations] == ["zones[1]", "zones[2]"]
    assert "unknown blocklist zone" in bad_zone.value.violations[0].description
