"""Recipient domain -> provider group, by name and by MX hosts."""

from __future__ import annotations

import pytest

from campaign_gateway.domain.providers import (
    PROVIDERS,
    ProviderGroup,
    classify,
    classify_domain,
    classify_mx,
    is_defunct_domain,
    recipient_domain,
    spec_of,
)

G = ProviderGroup


@pytest.mark.parametrize(
    ("domain", "group"),
    [
        ("gmail.com", G.GMAIL),
        ("googlemail.com", G.GMAIL),
        ("outlook.com", G.MICROSOFT),
        ("hotmail.com", G.MICROSOFT),
        ("hotmail.fr", G.MICROSOFT),
        ("live.co.uk", G.MICROSOFT),
        ("outlook.fr", G.MICROSOFT),
        ("msn.com", G.MICROSOFT),
        ("yahoo.fr", G.YAHOO),
        ("yahoo.co.uk", G.YAHOO),
        ("ymail.com", G.YAHOO),
        ("rocketmail.com", G.YAHOO),
        ("aol.com", G.YAHOO),
        ("aol.fr", G.YAHOO),
        ("orange.fr", G.ORANGE),
        ("wanadoo.fr", G.ORANGE),
        ("free.fr", G.FREE),
        ("aliceadsl.fr", G.FREE),
        ("sfr.fr", G.SFR),
        ("neuf.fr", G.SFR),
        ("club-internet.fr", G.SFR),
        ("numericable.fr", G.SFR),
        ("laposte.net", G.LAPOSTE),
        ("gmx.de", G.GMX),
        ("gmx.fr", G.GMX),
        ("gmx.at", G.GMX),
        ("web.de", G.GMX),
        ("mail.com", G.GMX),
        ("icloud.com", G.ICLOUD),
        ("me.com", G.ICLOUD),
        ("mac.com", G.ICLOUD),
        ("bbox.fr", G.OTHER),
        ("t-online.de", G.OTHER),
        ("example.org", G.OTHER),
    ],
)
def test_consumer_domains(domain: str, group: ProviderGroup) -> None:
    assert classify_domain(domain) is group


@pytest.mark.parametrize(
    "domain",
    [
        "live.example.com",  # sub.brand.tld would be somebody else's host
        "yahoo.example.org",
        "hotmail.company.fr",
        "mail.yahoo.example.com",
        "notgmail.com",
        "orange.es",  # Orange Spain is another company's mail
        "gmail.com.evil.example",
    ],
)
def test_names_that_only_look_like_a_provider_are_other(domain: str) -> None:
    assert classify_domain(domain) is G.OTHER


def test_addresses_are_reduced_to_their_domain() -> None:
    assert recipient_domain("  Jean.Dupont@Wanadoo.FR. ") == "wanadoo.fr"
    assert recipient_domain("<a@me.com>") == "me.com"
    assert classify_domain("Someone@GMAIL.COM") is G.GMAIL
    assert classify_domain("weird@local@hotmail.fr") is G.MICROSOFT


@pytest.mark.parametrize(
    ("host", "group"),
    [
        ("aspmx.l.google.com", G.GMAIL),
        ("ALT1.ASPMX.L.GOOGLE.COM.", G.GMAIL),
        ("gmail-smtp-in.l.google.com", G.GMAIL),
        ("smtp.google.com", G.GMAIL),
        ("contoso-com.mail.protection.outlook.com", G.MICROSOFT),
        ("hotmail-com.olc.protection.outlook.com", G.MICROSOFT),
        ("contoso-com.a-v1.mx.microsoft", G.MICROSOFT),
        ("mta5.am0.yahoodns.net", G.YAHOO),
        ("mx-aol.mail.gm0.yahoodns.net", G.YAHOO),
        ("smtp-in.orange.fr", G.ORANGE),
        ("mx1.free.fr", G.FREE),
        ("smtp-in.sfr.fr", G.SFR),
        ("smtpz4.laposte.net", G.LAPOSTE),
        ("mx00.gmx.net", G.GMX),
        ("mx-ha03.web.de", G.GMX),
        ("mx01.mail.icloud.com", G.ICLOUD),
    ],
)
def test_mx_hosts(host: str, group: ProviderGroup) -> None:
    assert classify_mx([host]) is group


def test_mx_suffixes_match_whole_labels_and_order_decides() -> None:
    assert classify_mx(["mx.notgoogle.com"]) is None
    assert classify_mx(["mail.example.org", "backup.mx1.free.fr", "aspmx.l.google.com"]) is G.FREE
    assert classify_mx([]) is None


def test_the_name_wins_then_the_mx_then_other() -> None:
    assert classify("client@gmail.com", ["mx.example.org"]) is G.GMAIL
    assert classify("client@acme-workspace.fr", ["aspmx.l.google.com", "alt1.aspmx.l.google.com"]) is G.GMAIL
    assert classify("client@contoso.fr", ["contoso-fr.mail.protection.outlook.com"]) is G.MICROSOFT
    assert classify("client@acme.fr", ["mx.acme.fr"]) is G.OTHER
    assert classify("client@acme.fr") is G.OTHER


def test_voila_is_defunct() -> None:
    assert is_defunct_domain("old.user@voila.fr")
    assert classify_domain("old.user@voila.fr") is G.OTHER
    assert not is_defunct_domain("user@orange.fr")


def test_the_table_is_consistent() -> None:
    groups = [spec.group for spec in PROVIDERS]
    assert len(groups) == len(set(groups)) and G.OTHER not in groups
    assert spec_of(G.OTHER) is None
    for spec in PROVIDERS:
        assert spec_of(spec.group) is spec
        assert list(spec.queue_domains) == sorted(spec.queue_domains)
        for domain in spec.queue_domains:
            assert classify_domain(domain) is spec.group, domain
