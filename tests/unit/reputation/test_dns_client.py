"""Resolver settings and the wire handling of the scanning client (no network)."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from libs.errors import InvalidArgument
from reputation.adapters.dns_client import (
    TXT,
    A,
    Nameserver,
    decode_answer,
    encode_question,
    parse_nameservers,
    system_nameservers,
)
from reputation.domain.dnsbl import DnsOutcome


def test_parse_nameservers() -> None:
    assert parse_nameservers("127.0.0.1:5353, [::1]:5300,10.0.0.1,::1") == (
        Nameserver("127.0.0.1", 5353),
        Nameserver("::1", 5300),
        Nameserver("10.0.0.1", 53),
        Nameserver("::1", 53),
    )
    assert str(Nameserver("::1", 5300)) == "[::1]:5300" and str(Nameserver("10.0.0.1")) == "10.0.0.1:53"


def test_empty_gives_no_nameserver_and_the_system_resolver_has_some() -> None:
    assert parse_nameservers("") == () == parse_nameservers(" , ")
    servers = system_nameservers()
    assert servers and all(s.port == 53 for s in servers)


@pytest.mark.parametrize(
    "value", ["resolver.example:53", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:x", "[::1", "[::1]x"]
)
def test_bad_nameservers_name_the_setting(value: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_nameservers(value)
    assert exc.value.violations[0].field == "EE_DNS_NAMESERVERS"


def test_question_encoding_matches_dnspython() -> None:
    query = dns.message.make_query("2.0.0.127.zen.spamhaus.org", "A")
    assert query.to_wire()[12:] == encode_question("2.0.0.127.zen.spamhaus.org.", A)
    with pytest.raises(ValueError):
        encode_question("a" * 64 + ".example", A)
    with pytest.raises(ValueError):
        encode_question("a..example", A)


def reply(name: str, rdtype: str, rcode: int = dns.rcode.NOERROR, *records: str) -> bytes:
    query = dns.message.make_query(name, rdtype)
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if records:
        response.answer.append(dns.rrset.from_text(name, 60, "IN", rdtype, *records))
    return response.to_wire()


@pytest.mark.parametrize(
    ("rcode", "outcome"),
    [
        (dns.rcode.NXDOMAIN, DnsOutcome.NXDOMAIN),
        (dns.rcode.SERVFAIL, DnsOutcome.SERVFAIL),
        (dns.rcode.REFUSED, DnsOutcome.REFUSED),
        (dns.rcode.FORMERR, DnsOutcome.ERROR),
        (dns.rcode.NOERROR, DnsOutcome.NODATA),
    ],
)
def test_decode_rcodes(rcode: int, outcome: DnsOutcome) -> None:
    assert decode_answer("x.zone.test", A, reply("x.zone.test.", "A", rcode)).outcome is outcome


def test_decode_records() -> None:
    answer = decode_answer("x.zone.test", A, reply("x.zone.test.", "A", dns.rcode.NOERROR, "127.0.0.2", "127.0.0.4"))
    assert answer.outcome is DnsOutcome.ANSWER and sorted(answer.records) == ["127.0.0.2", "127.0.0.4"]
    text = decode_answer("x.zone.test", TXT, reply("x.zone.test.", "TXT", dns.rcode.NOERROR, '"part one " "part two"'))
    assert text.records == ("part one part two",)
    broken = bytearray(reply("x.zone.test.", "A", dns.rcode.NOERROR, "127.0.0.2"))
    assert decode_answer("x.zone.test", A, bytes(broken[:-3])).outcome is DnsOutcome.ERROR
