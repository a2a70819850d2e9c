"""The catalogue: the nine lists alive today, each with its own code table."""

from __future__ import annotations

import pytest

from libs.errors import InvalidArgument
from reputation.domain.zones import (
    DEFAULT_CATALOGUE,
    DEFAULT_DOMAIN_ZONES,
    DEFAULT_IP_ZONES,
    SPAMHAUS_ZEN,
    CodeKind,
    Severity,
    ZoneCatalogue,
    ZoneKind,
)


def test_the_nine_default_ip_zones() -> None:
    assert [z.name for z in DEFAULT_IP_ZONES] == [
        "zen.spamhaus.org",
        "bl.spamcop.net",
        "b.barracudacentral.org",
        "psbl.surriel.com",
        "bl.mailspike.net",
        "all.spamrats.com",
        "dnsbl-1.uceprotect.net",
        "ix.dnsbl.manitu.net",
        "hostkarma.junkemailfilter.com",
    ]
    assert all(z.kind is ZoneKind.IP for z in DEFAULT_IP_ZONES)
    assert not any("sorbs" in z.name for z in DEFAULT_CATALOGUE.zones)  # dead since 2024


def test_domain_lists() -> None:
    assert [z.name for z in DEFAULT_DOMAIN_ZONES] == ["dbl.spamhaus.org", "multi.surbl.org", "multi.uribl.com"]
    assert all(z.kind is ZoneKind.DOMAIN and z.clean_test_point == "invalid" for z in DEFAULT_DOMAIN_ZONES)


def test_every_zone_documents_its_codes() -> None:
    for zone in DEFAULT_CATALOGUE.zones:
        assert zone.codes or zone.bitmask, zone.key
        for code in zone.codes.values():
            assert code.meaning
            if code.kind is CodeKind.BLOCK:
                assert code.severity > Severity.NONE


def test_spamhaus_error_codes_are_errors() -> None:
    for last in (250, 251, 252, 254, 255):
        assert SPAMHAUS_ZEN.codes[f"127.255.255.{last}"].kind is CodeKind.ERROR
    assert "public" in SPAMHAUS_ZEN.codes["127.255.255.254"].meaning


def test_select_by_key_or_name_any_case() -> None:
    chosen = DEFAULT_CATALOGUE.select(["spamhaus-zen", "BL.SPAMCOP.NET.", "spamhaus-zen"])
    assert [z.key for z in chosen] == ["spamhaus-zen", "spamcop"]


def test_unknown_zones_are_bad_input() -> None:
    with pytest.raises(InvalidArgument) as exc:
        DEFAULT_CATALOGUE.select(["dnsbl.sorbs.net", "zen.spamhaus.org", "no zone!"], "tenant.zones")
    assert [v.field for v in exc.value.violations] == ["tenant.zones[0]", "tenant.zones[2]"]


def test_retarget_keeps_the_dialect() -> None:
    dqs = SPAMHAUS_ZEN.retarget("KEY123.zen.dq.spamhaus.net")
    assert dqs.name == "key123.zen.dq.spamhaus.net" and dqs.key == "spamhaus-zen" and dqs.codes is SPAMHAUS_ZEN.codes
    catalogue = ZoneCatalogue((dqs,))
    assert catalogue.get("key123.zen.dq.spamhaus.net") is dqs
    with pytest.raises(ValueError):
        ZoneCatalogue((SPAMHAUS_ZEN, dqs))  # two zones under one key
