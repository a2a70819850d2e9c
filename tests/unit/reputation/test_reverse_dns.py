"""Reverse DNS beyond FCrDNS: generic names (IP digits, dynamic words, hosting defaults) and names outside the
sending and HELO domains, each judged by the tenant's check policy."""

from __future__ import annotations

import pytest

from reputation.domain.check_policy import CheckPolicy
from reputation.domain.checks import Verdict
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome
from reputation.domain.host_dns import fcrdns_verdict, generic_ptr_signs


def answer(*records: str) -> DnsAnswer:
    return DnsAnswer(DnsOutcome.ANSWER, records)


def confirmed(ip: str, name: str, helo: str | None = None, domain: str | None = None, **policy: Verdict):
    """The PTR check of `ip` whose PTR `name` resolves back to it (FCrDNS passes)."""
    return fcrdns_verdict(ip, helo, answer(f"{name}."), {name: answer(ip)}, domain=domain, policy=CheckPolicy(**policy))


@pytest.mark.parametrize(
    ("ip", "name", "sign"),
    [
        ("1.2.3.4", "static.1.2.3.4.clients.example-hosting.net", "digits of 1.2.3.4"),
        ("1.2.3.4", "4-3-2-1.company.com", "digits of 1.2.3.4"),  # reversed, with dashes
        ("67.171.0.90", "c-67-171-0-90.hsd1.wa.comcast.net", "digits of 67.171.0.90"),
        ("203.0.113.7", "ec2-203-0-113-7.compute-1.amazonaws.com", "default naming of Amazon EC2"),
        ("203.0.113.7", "ns3012345.ovh.net", "default naming of OVH"),
        ("198.51.100.20", "static.20.100.51.198.clients.your-server.de", "default naming of Hetzner"),
        ("192.0.2.55", "host55.dynamic.isp.example", "dynamic"),
        ("192.0.2.55", "dhcp-55.pool.isp.example", "dhcp, pool"),
        ("192.0.2.55", "adsl-55.isp.example", "adsl"),
        ("192.0.2.55", "lns-bzn-1-82-64.adsl.proxad.net", "default naming of Free consumer access"),
        ("192.0.2.55", "lfbn-1-2-3.w92-0.abo.wanadoo.fr", "default naming of Orange consumer access"),
        ("192.0.2.55", "c0000237.example.net", "hexadecimal"),
        ("192.0.2.55", "55.2.0.192.in-addr.arpa", "reverse-lookup name"),
    ],
)
def test_generic_names_and_why(ip: str, name: str, sign: str) -> None:
    signs = "; ".join(generic_ptr_signs(name, ip))
    assert sign in signs, signs


@pytest.mark.parametrize(
    "name",
    [
        "mail.example.com",
        "mta1.sos-expat.example",
        "mail-out-2.example.com",
        "o1.email.example.com",
        "poolside.example",
    ],
)
def test_named_hosts_are_not_generic(name: str) -> None:
    assert generic_ptr_signs(name, "192.0.2.55") == []


def test_a_generic_ptr_warns_even_when_fcrdns_passes() -> None:
    check = confirmed(
        "1.2.3.4",
        "static.1.2.3.4.clients.example-hosting.net",
        helo="static.1.2.3.4.clients.example-hosting.net",
        domain="example.com",
    )
    assert check.verdict is Verdict.WARN
    assert check.reason.startswith(
        "1.2.3.4 has forward-confirmed reverse DNS static.1.2.3.4.clients.example-hosting.net, but "
        "static.1.2.3.4.clients.example-hosting.net looks generic (it carries the digits of 1.2.3.4)"
    )
    assert "GMX, Web.de and T-Online refuse generic reverse DNS" in check.reason
    assert check.details["generic"] == "it carries the digits of 1.2.3.4"
    # The HELO name's domain is the tenant's own infrastructure here: not "outside" on top.
    assert "foreign" not in check.details


def test_the_tenant_policy_decides_how_much_a_generic_ptr_weighs() -> None:
    name = "ec2-203-0-113-7.compute-1.amazonaws.com"
    strict = confirmed("203.0.113.7", name, helo=name, generic_ptr=Verdict.FAIL)
    assert strict.verdict is Verdict.FAIL and "default naming of Amazon EC2" in strict.reason
    lenient = confirmed("203.0.113.7", name, helo=name, generic_ptr=Verdict.PASS)
    assert lenient.verdict is Verdict.PASS and lenient.details["generic"]  # the fact stays in the details


def test_a_ptr_outside_the_sending_and_helo_domains_is_flagged() -> None:
    outside = confirmed("192.0.2.10", "mail.other-brand.example", helo="mail.other-brand.example", domain="sos.example")
    assert outside.verdict is Verdict.PASS  # the HELO name's own domain: the PTR reflects the operator
    foreign = confirmed("192.0.2.10", "mail.other-brand.example", helo="mta.sos.example", domain="sos.example")
    assert foreign.verdict is Verdict.WARN and foreign.details["foreign"] == "true"
    assert "mail.other-brand.example is outside sos.example: Yahoo and iCloud expect" in foreign.reason
    assert "it says HELO mta.sos.example" in foreign.reason  # both problems, one verdict
    by_domain = confirmed("192.0.2.10", "relay.hoster.example", domain="sos.example")
    assert by_domain.verdict is Verdict.WARN and "outside sos.example" in by_domain.reason
    inside = confirmed("192.0.2.10", "mail.news.sos.example", domain="sos.example")
    assert (
        inside.verdict is Verdict.PASS
        and inside.reason == "192.0.2.10 has forward-confirmed reverse DNS mail.news.sos.example"
    )
    accepted = confirmed("192.0.2.10", "relay.hoster.example", domain="sos.example", foreign_ptr=Verdict.PASS)
    assert accepted.verdict is Verdict.PASS


def test_a_named_ptr_matching_helo_in_the_sending_domain_passes() -> None:
    check = confirmed("192.0.2.10", "mail.sos.example", helo="mail.sos.example", domain="sos.example")
    assert check.verdict is Verdict.PASS
    assert check.reason == "192.0.2.10 has forward-confirmed reverse DNS mail.sos.example, matching its HELO name"
