"""The scanner's orchestration over an in-memory client: coverage, budgets, TXT only for listings."""

from __future__ import annotations

import asyncio

from libs.clock import FakeClock
from reputation.adapters.dns_client import TXT, A
from reputation.adapters.dnsbl_scanner import DnsblScanner, ZoneBudget
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome, ListingStatus, probe_names
from reputation.domain.zones import SPAMCOP, SPAMHAUS_DBL, SPAMHAUS_ZEN, SURBL, Zone

LISTED = DnsAnswer(DnsOutcome.ANSWER, ("127.0.0.2",))
NX = DnsAnswer(DnsOutcome.NXDOMAIN)


class FakeClient:
    """Answers from a table; records what was asked and how many questions were in flight at most."""

    def __init__(self, answers: dict[tuple[str, int], DnsAnswer], delay: float = 0.001) -> None:
        self.answers = answers
        self.delay = delay
        self.asked: list[tuple[str, int]] = []
        self.in_flight = 0
        self.peak = 0

    def healthy(self, *zones: Zone) -> FakeClient:
        for zone in zones:
            code = {SPAMHAUS_DBL.key: "127.0.1.2", SURBL.key: "127.0.0.2"}.get(zone.key, "127.0.0.2")
            self.answers[(probe_names(zone)[0], A)] = DnsAnswer(DnsOutcome.ANSWER, (code,))
        return self

    async def query(self, name: str, rdtype: int = A) -> DnsAnswer:
        self.asked.append((name, rdtype))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(self.delay)
        self.in_flight -= 1
        return self.answers.get((name, rdtype), NX)


def test_txt_is_asked_only_for_listings_and_results_keep_input_order() -> None:
    client = FakeClient(
        {
            ("10.2.0.192.bl.spamcop.net", A): LISTED,
            ("10.2.0.192.bl.spamcop.net", TXT): DnsAnswer(DnsOutcome.ANSWER, ("spam seen",)),
        }
    ).healthy(SPAMCOP)
    clock = FakeClock()
    results = asyncio.run(DnsblScanner(client, clock=clock).scan(["192.0.2.20", "192.0.2.10"], [SPAMCOP]))
    assert [r.target for r in results] == ["192.0.2.20", "192.0.2.10"]
    assert results[1].results[0].reason == "spam seen" and results[0].results[0].status is ListingStatus.NOT_LISTED
    assert [n for n, t in client.asked if t == TXT] == ["10.2.0.192.bl.spamcop.net"]
    assert results[0].started_at == clock.now()


def test_targets_meet_only_the_zones_that_cover_them() -> None:
    client = FakeClient({}).healthy(SPAMCOP, SPAMHAUS_ZEN, SPAMHAUS_DBL)
    v4, v6, domain = asyncio.run(
        DnsblScanner(client).scan(["192.0.2.1", "2001:db8::1", "Example.COM"], [SPAMCOP, SPAMHAUS_ZEN, SPAMHAUS_DBL])
    )
    assert [r.zone_key for r in v4.results] == ["spamcop", "spamhaus-zen"]
    assert [r.zone_key for r in v6.results] == ["spamhaus-zen"]
    assert [r.zone_key for r in domain.results] == ["spamhaus-dbl"] and domain.target == "example.com"
    assert ("example.com.dbl.spamhaus.org", A) in client.asked


def test_an_unhealthy_zone_is_not_asked_about_targets() -> None:
    client = FakeClient({}).healthy(SPAMHAUS_ZEN)  # spamcop does not list its test point: dead
    (result,) = asyncio.run(DnsblScanner(client).scan(["192.0.2.1"], [SPAMCOP, SPAMHAUS_ZEN]))
    assert result.result_for("spamcop").status is ListingStatus.SKIPPED  # type: ignore[union-attr]
    assert not any(name.startswith("1.2.0.192.bl.spamcop") for name, _ in client.asked)


def test_concurrency_is_bounded_per_zone_and_overall() -> None:
    ips = [f"198.51.100.{i}" for i in range(1, 101)]
    client = FakeClient({}).healthy(SPAMCOP, SPAMHAUS_ZEN)
    scanner = DnsblScanner(client, max_in_flight=16, budgets={"spamcop": ZoneBudget(max_in_flight=3)})
    health = asyncio.run(scanner.check_health([SPAMCOP, SPAMHAUS_ZEN]))
    client.peak = 0
    results = asyncio.run(scanner.scan(ips, [SPAMCOP, SPAMHAUS_ZEN], health=health))
    assert client.peak <= 3 + 8  # spamcop's own budget + zen's share of the 16
    assert all(r.complete for r in results)

    only_spamcop = FakeClient({}).healthy(SPAMCOP)
    scanner = DnsblScanner(only_spamcop, max_in_flight=16, budgets={"spamcop": ZoneBudget(max_in_flight=3)})
    asyncio.run(scanner.scan(ips, [SPAMCOP]))
    assert only_spamcop.peak <= 3


def test_the_query_cap_leaves_the_rest_skipped_never_clean() -> None:
    client = FakeClient({}).healthy(SPAMCOP)
    scanner = DnsblScanner(client, default_budget=ZoneBudget(max_in_flight=2, max_queries=5))
    results = asyncio.run(scanner.scan([f"198.51.100.{i}" for i in range(1, 9)], [SPAMCOP]))
    assert [r.results[0].status for r in results].count(ListingStatus.NOT_LISTED) == 5
    assert [r.results[0].status for r in results].count(ListingStatus.SKIPPED) == 3


def test_a_tracking_host_is_found_listed_through_its_registered_domain() -> None:
    client = FakeClient(
        {
            ("example.com.multi.surbl.org", A): DnsAnswer(DnsOutcome.ANSWER, ("127.0.0.64",)),
            ("example.com.dbl.spamhaus.org", A): DnsAnswer(DnsOutcome.ANSWER, ("127.0.1.2",)),
        }
    ).healthy(SPAMHAUS_DBL, SURBL)
    (scan,) = asyncio.run(DnsblScanner(client).scan(["click.example.com"], [SPAMHAUS_DBL, SURBL]))
    dbl, surbl = scan.results
    assert dbl.status is surbl.status is ListingStatus.LISTED
    assert dbl.listed_as == surbl.listed_as == "example.com" and scan.target == "click.example.com"
    asked = [name for name, rdtype in client.asked if rdtype == A and "test" not in name and "invalid" not in name]
    # SURBL lists registered domains only; Spamhaus DBL also lists hosts, so the host is asked there too.
    assert sorted(asked) == sorted(
        ["example.com.dbl.spamhaus.org", "click.example.com.dbl.spamhaus.org", "example.com.multi.surbl.org"]
    )
