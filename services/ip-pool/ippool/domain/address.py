"""An IP address that may be registered as a sending IP.

Public API:
    IpAddress                                    -- normalised address value (`str(ip)` is the canonical text)
    parse_ip_address(text, *, field_name="address") -> IpAddress   -- validate + normalise, or InvalidArgument

Normalisation: surrounding blanks are dropped, IPv6 is written in its compressed lower-case form and an
IPv4-mapped IPv6 address (``::ffff:192.0.2.10``) becomes the plain IPv4 address, so one host has one key and
"registered twice" is detected whatever spelling was used.

Refused, each with its reason: loopback, unspecified, multicast, link-local, reserved (240.0.0.0/4,
IETF-reserved IPv6 blocks) and IPv6 zone indexes -- none of them can be the public source of mail.
Private and documentation ranges (10/8, 192.0.2.0/24, 2001:db8::/32, ...) are accepted: PowerMTA binds to a
local address that may sit behind 1:1 NAT, and documentation ranges are what tests and examples use.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from libs.errors import InvalidArgument


@dataclass(frozen=True)
class IpAddress:
    """A validated, normalised IP address; build it with `parse_ip_address`."""

    value: str
    version: int

    def __str__(self) -> str:
        return self.value


_IpObject = ipaddress.IPv4Address | ipaddress.IPv6Address


def _refusal(address: _IpObject) -> str | None:
    """Why this address can never be a sending IP, or None when it can."""
    if address.is_loopback:
        return "loopback addresses only reach the host itself"
    if address.is_unspecified:
        return "the unspecified address is not a host address"
    if address.is_multicast:
        return "multicast addresses cannot open SMTP connections"
    if address.is_link_local:
        return "link-local addresses are not routable beyond the local link"
    if address.is_reserved:
        return "reserved addresses are not assigned to hosts"
    return None


def parse_ip_address(text: str, *, field_name: str = "address") -> IpAddress:
    """Validate and normalise `text`; raise InvalidArgument naming `field_name` with the reason."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(field_name, "an IPv4 or IPv6 address is required")
    candidate = text.strip()
    try:
        address: _IpObject = ipaddress.ip_address(candidate)
    except ValueError:
        raise InvalidArgument(field_name, f"{candidate!r} is not a valid IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            raise InvalidArgument(field_name, "an IPv6 zone index (%...) is not allowed on a sending address")
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    reason = _refusal(address)
    if reason is not None:
        raise InvalidArgument(field_name, f"{address} is refused: {reason}")
    return IpAddress(value=str(address), version=address.version)
