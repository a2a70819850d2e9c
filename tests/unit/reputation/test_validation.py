"""Input checks: every bad value is refused with its field named (a 400 over REST)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from libs.errors import InvalidArgument, Violations
from reputation.domain.validation import (
    normalize_domain,
    normalize_zone_name,
    parse_each,
    parse_ip,
    parse_ips,
    validate_selector,
    validate_selectors,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", IPv4Address("192.0.2.1")),
        (" 192.0.2.1 ", IPv4Address("192.0.2.1")),
        ("2001:DB8::1", IPv6Address("2001:db8::1")),
        ("::ffff:192.0.2.7", IPv4Address("192.0.2.7")),
    ],
)
def test_valid_ips(text: str, expected: object) -> None:
    assert parse_ip(text) == expected


@pytest.mark.parametrize(
    "text", ["", "192.0.2", "192.0.2.256", "1.2.3.4/24", "fe80::1%eth0", "0.0.0.0", "224.0.0.1", "x"]
)
def test_invalid_ips_name_the_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_ip(text, "address")
    assert exc.value.violations[0].field == "address"


def test_parse_ips_reports_every_bad_one_and_drops_duplicates() -> None:
    assert parse_ips(["192.0.2.1", "192.0.2.1", "::1"]) == [IPv4Address("192.0.2.1"), IPv6Address("::1")]
    with pytest.raises(InvalidArgument) as exc:
        parse_ips(["bad", "192.0.2.1", "also bad"])
    assert [v.field for v in exc.value.violations] == ["ips[0]", "ips[2]"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("mail-1.sub.example.org", "mail-1.sub.example.org"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_valid_domains(text: str, expected: str) -> None:
    assert normalize_domain(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "localhost",
        "exa mple.com",
        "-bad.example",
        "bad-.example",
        "a..example",
        "under_score.example",
        "1.2.3.4",
        "x" * 64 + ".example",
        ".".join(["a" * 60] * 5),
        "example.com/path",
    ],
)
def test_invalid_domains(text: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        normalize_domain(text, "domain")
    assert exc.value.violations[0].field == "domain"


@pytest.mark.parametrize("text", ["s1", "selector1", "k1.2024", "Mte1", "20230601"])
def test_valid_selectors(text: str) -> None:
    assert validate_selector(text) == text.lower()


@pytest.mark.parametrize("text", ["", "bad_selector", "bad selector", "-s1", "s1-", "s1..x", "s1;drop", "sél"])
def test_selectors_with_illegal_characters(text: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_selector(text, "dkim_selectors[0]")
    assert exc.value.violations[0].field == "dkim_selectors[0]"


def test_validate_selectors_names_each_index() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_selectors(["ok", "no_ok", "fine", "no way"])
    assert [v.field for v in exc.value.violations] == ["dkim_selectors[1]", "dkim_selectors[3]"]


def test_zone_names() -> None:
    assert normalize_zone_name("ZEN.Spamhaus.org.") == "zen.spamhaus.org"
    with pytest.raises(InvalidArgument):
        normalize_zone_name("zen spamhaus")


def test_parse_each_names_every_bad_item_drops_duplicates_and_keeps_order() -> None:
    problems = Violations()
    parsed = parse_each(["S1", "bad sel", "k2", "s1"], validate_selector, "dkim_selectors", problems)
    assert parsed == ["s1", "k2"] and [v.field for v in problems.items] == ["dkim_selectors[1]"]
    assert parse_each(["a.example", "A.example"], normalize_domain, "targets", unique=False) == ["a.example"] * 2
    with pytest.raises(InvalidArgument) as caught:
        parse_each(["192.0.2.1"] * 5 + ["nope"], parse_ip, "ips", max_items=3)
    assert [v.field for v in caught.value.violations] == ["ips"]  # the list is too long; the rest is not read


def test_an_answer_does_not_grow_with_the_input() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_each(["x" * 100_000 + str(i) for i in range(200)], parse_ip, "ips", max_items=256)
    violations = caught.value.violations
    assert len(violations) == 11 and violations[-1].field == "ips[10]" and "190 more" in violations[-1].description
    assert len(str(caught.value)) < 2000
