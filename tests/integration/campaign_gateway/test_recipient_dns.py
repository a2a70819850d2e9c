"""Recipient domains' mail hosts asked of a real nsd: MX, A only, null MX, none, a name that does not exist, and a
resolver that never answers (unknown: nobody is dropped for it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from campaign_gateway.adapters.recipient_dns import DnsRecipientResolver, Nameserver, parse_nameservers
from campaign_gateway.domain.recipients import MailHost
from tests.harness.dns_servers import Nsd, silent_nameserver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def nsd() -> Iterator[Nsd]:
    server = Nsd()
    server.add_zone("mx.test", ["@ MX 10 mx1.mx.test.", "@ MX 20 aspmx.l.google.com.", "mx1 A 198.51.100.25"])
    server.add_zone("aonly.test", ["@ A 198.51.100.26"])
    server.add_zone("null.test", ["@ MX 0 ."])
    server.add_zone("nomail.test", ["www A 198.51.100.27"])
    with server:
        yield server


def test_each_kind_of_answer(nsd: Nsd) -> None:
    resolver = DnsRecipientResolver(parse_nameservers(nsd.nameserver), timeout=2, concurrency=4)
    found = resolver.lookup(["MX.test", "aonly.test", "null.test", "nomail.test", "missing.nomail.test", "mx.test."])
    assert sorted(found) == ["aonly.test", "missing.nomail.test", "mx.test", "nomail.test", "null.test"]
    assert found["mx.test"].mail_host is MailHost.MX
    assert set(found["mx.test"].mx_hosts) == {"mx1.mx.test", "aspmx.l.google.com"}
    assert found["aonly.test"].mail_host is MailHost.ADDRESS_ONLY
    assert found["null.test"].mail_host is MailHost.NULL_MX
    assert found["nomail.test"].mail_host is MailHost.NONE
    assert found["missing.nomail.test"].mail_host is MailHost.NONE
    assert "NXDOMAIN" in found["missing.nomail.test"].detail


def test_a_resolver_that_never_answers_is_unknown() -> None:
    with silent_nameserver() as silent:
        resolver = DnsRecipientResolver(parse_nameservers(silent), timeout=0.3)
        (answer,) = resolver.lookup(["mx.test"]).values()
    assert answer.mail_host is MailHost.UNKNOWN


def test_nameservers_parse_like_the_platforms_setting() -> None:
    assert parse_nameservers("127.0.0.1:5353, [::1]:53,192.0.2.1") == (
        Nameserver("127.0.0.1", 5353),
        Nameserver("::1", 53),
        Nameserver("192.0.2.1", 53),
    )
    assert parse_nameservers("") == ()
    with pytest.raises(ValueError, match=r"resolver\.example"):
        parse_nameservers("resolver.example:53")
