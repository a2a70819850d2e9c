"""Input checks for everything a caller hands the reputation service.

Bad input is rejected here, with the field named (a 400 over REST), before it can reach DNS: a name
that is not a hostname would otherwise become a query for something else, or a resolver error that
reads like an "unknown" blocklist answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address

from libs.errors import InvalidArgument, Violations

IPAddress = IPv4Address | IPv6Address

MAX_NAME_LENGTH = 253
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_NUMERIC = re.compile(r"^[0-9]+$")


def parse_ip(value: str, field_name: str = "address") -> IPAddress:
    """A sending IP in canonical form; IPv4-mapped IPv6 becomes the IPv4 address it carries."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(field_name, "an IP address is required")
    text = value.strip()
    if "%" in text:
        raise InvalidArgument(field_name, f"{value!r} has a zone index; give a global IP address")
    try:
        ip = ip_address(text)
    except ValueError:
        raise InvalidArgument(field_name, f"{value!r} is not an IPv4 or IPv6 address") from None
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        raise InvalidArgument(field_name, f"{value!r} cannot be a sending address")
    return ip


def _hostname(value: str, field_name: str, what: str, min_labels: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(field_name, f"a {what} is required")
    text = value.strip()
    if text.endswith("."):
        text = text[:-1]
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidArgument(field_name, f"{value!r} is not a valid internationalised {what}") from None
    text = text.lower()
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidArgument(field_name, f"{what} is longer than {MAX_NAME_LENGTH} characters")
    labels = text.split(".")
    if len(labels) < min_labels:
        raise InvalidArgument(field_name, f"{value!r} is not a fully qualified {what}")
    for label in labels:
        if not label:
            raise InvalidArgument(field_name, f"{value!r} has an empty label")
        if not _LABEL.match(label):
            raise InvalidArgument(
                field_name,
                f"{value!r} has an invalid label {label[:70]!r}: use letters, digits and inner hyphens, "
                "at most 63 characters",
            )
    if min_labels > 1 and _NUMERIC.match(labels[-1]):
        raise InvalidArgument(field_name, f"{value!r} is not a domain name (numeric top-level label)")
    return text


def normalize_domain(value: str, field_name: str = "domain") -> str:
    """A sending or tracking domain: lower case, ASCII (IDNA), no trailing dot, at least two labels."""
    return _hostname(value, field_name, "domain name", min_labels=2)


def normalize_hostname(value: str, field_name: str = "helo") -> str:
    """A host name such as a HELO name; same rules as a domain."""
    return _hostname(value, field_name, "host name", min_labels=2)


def normalize_zone_name(value: str, field_name: str = "zone") -> str:
    """A DNS list zone name (`zen.spamhaus.org`, a DQS name, a local mirror)."""
    return _hostname(value, field_name, "zone name", min_labels=2)


_SELECTOR_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def validate_selector(value: str, field_name: str = "dkim_selectors") -> str:
    """A DKIM selector per RFC 6376 §3.1: dot-separated LDH labels (no underscore, no spaces)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(field_name, "a DKIM selector is required")
    text = value.strip()
    if len(text) > 63 * 2 + 1:
        raise InvalidArgument(field_name, "DKIM selector is too long")
    for label in text.split("."):
        if not _SELECTOR_LABEL.match(label):
            raise InvalidArgument(
                field_name,
                f"{value!r} is not a valid DKIM selector: only letters, digits, inner hyphens and dots are allowed",
            )
    return text.lower()


def parse_ips(values: Iterable[str], field_name: str = "ips") -> list[IPAddress]:
    """Several IPs, every bad one named (`ips[2]`), duplicates dropped, order kept."""
    out: list[IPAddress] = []
    problems = Violations()
    for i, value in enumerate(values):
        try:
            ip = parse_ip(value, f"{field_name}[{i}]")
        except InvalidArgument as exc:
            problems.items.extend(exc.violations)
            continue
        if ip not in out:
            out.append(ip)
    problems.raise_if_any()
    return out


def validate_selectors(values: Iterable[str], field_name: str = "dkim_selectors") -> list[str]:
    """Several selectors, every bad one named, duplicates dropped, order kept."""
    out: list[str] = []
    problems = Violations()
    for i, value in enumerate(values):
        try:
            selector = validate_selector(value, f"{field_name}[{i}]")
        except InvalidArgument as exc:
            problems.items.extend(exc.violations)
            continue
        if selector not in out:
            out.append(selector)
    problems.raise_if_any()
    return out
