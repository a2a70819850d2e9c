"""IP address values: what is accepted, how it is normalised, and why some addresses are refused."""

from __future__ import annotations

import pytest

from ippool.domain.address import parse_ip_address
from libs.errors import InvalidArgument


@pytest.mark.parametrize(
    ("text", "normalised", "version"),
    [
        ("192.0.2.10", "192.0.2.10", 4),
        ("  198.51.100.7 ", "198.51.100.7", 4),
        ("10.1.2.3", "10.1.2.3", 4),
        ("2001:DB8:0:0::1", "2001:db8::1", 6),
        ("2001:0db8:0000:0000:0000:0000:0000:00ff", "2001:db8::ff", 6),
        ("::ffff:192.0.2.10", "192.0.2.10", 4),
        ("8.8.8.8", "8.8.8.8", 4),
    ],
)
def test_accepted_and_normalised(text: str, normalised: str, version: int) -> None:
    address = parse_ip_address(text)
    assert (str(address), address.version) == (normalised, version)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.5", "multicast"),
        ("ff02::1", "multicast"),
        ("169.254.10.20", "link-local"),
        ("fe80::1", "link-local"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
    ],
)
def test_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_ip_address(text)
    assert caught.value.violations[0].field == "address"
    assert why in caught.value.violations[0].description


@pytest.mark.parametrize(
    "text",
    ["", "   ", "192.0.2", "192.0.2.256", "192.0.2.010", "192.0.2.0/24", "mail.example", "fe80::1%eth0", "2001:db8::g"],
)
def test_malformed_is_invalid_argument_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_ip_address(text, field_name="ip.address")
    assert caught.value.violations[0].field == "ip.address"


def test_same_host_has_one_key_whatever_the_spelling() -> None:
    assert parse_ip_address("2001:db8::a") == parse_ip_address("2001:0DB8::000A")
