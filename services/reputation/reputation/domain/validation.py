"""Input checks for everything a caller hands the reputation service.

Bad input is rejected here, with the field named (a 400 over REST), before it can reach DNS: a name
that is not a hostname would otherwise become a query for something else, or a resolver error that
reads like an "unknown" blocklist answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import TypeVar

from libs.errors import InvalidArgument, Violations, quoted

IPAddress = IPv4Address | IPv6Address
RawT = TypeVar("RawT")
ParsedT = TypeVar("ParsedT")

MAX_NAME_LENGTH = 253
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_NUMERIC = re.compile(r"^[0-9]+$")
_TENANT = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")


def raise_if_any(problems: Violations) -> None:
    """Raises InvalidArgument naming the problems found (libs.errors keeps the answer small)."""
    problems.raise_if_any()


def validate_tenant_id(value: str, field_name: str = "tenant_id") -> str:
    """A tenant id as the platform writes them: lower-case letters, digits, inner `-` and `_`."""
    text = (value or "").strip()
    if not text:
        raise InvalidArgument(field_name, "a tenant id is required")
    if not _TENANT.match(text):
        raise InvalidArgument(field_name, f"{quoted(value)} is not a tenant id (lower-case letters, digits, '-', '_')")
    return text


def parse_ip(value: str, field_name: str = "address") -> IPAddress:
    """A sending IP in canonical form; IPv4-mapped IPv6 becomes the IPv4 address it carries."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(field_name, "an IP address is required")
    text = value.strip()
    if "%" in text:
        raise InvalidArgument(field_name, f"{quoted(value)} has a zone index; give a global IP address")
    try:
        ip = ip_address(text)
    except ValueError:
        raise InvalidArgument(field_name, f"{quoted(value)} is not an IPv4 or IPv6 address") from None
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        raise InvalidArgument(field_name, f"{quoted(value)} cannot be a sending address")
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
            raise InvalidArgument(field_name, f"{quoted(value)} is not a valid internationalised {what}") from None
    text = text.lower()
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidArgument(field_name, f"{what} is longer than {MAX_NAME_LENGTH} characters")
    labels = text.split(".")
    if len(labels) < min_labels:
        raise InvalidArgument(field_name, f"{quoted(value)} is not a fully qualified {what}")
    for label in labels:
        if not label:
            raise InvalidArgument(field_name, f"{quoted(value)} has an empty label")
        if not _LABEL.match(label):
            raise InvalidArgument(
                field_name,
                f"{quoted(value)} has an invalid label {quoted(label)}: use letters, digits and inner hyphens, "
                "at most 63 characters",
            )
    if min_labels > 1 and _NUMERIC.match(labels[-1]):
        raise InvalidArgument(field_name, f"{quoted(value)} is not a domain name (numeric top-level label)")
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
                f"{quoted(value)} is not a valid DKIM selector: only letters, digits, inner hyphens and dots",
            )
    return text.lower()


def parse_ips(values: Sequence[str], field_name: str = "ips", problems: Violations | None = None) -> list[IPAddress]:
    """Several IPs, every bad one named (`ips[2]`), duplicates dropped, order kept."""
    return parse_each(values, parse_ip, field_name, problems)


def validate_selectors(
    values: Sequence[str], field_name: str = "dkim_selectors", problems: Violations | None = None
) -> list[str]:
    """Several selectors, every bad one named, duplicates dropped, order kept."""
    return parse_each(values, validate_selector, field_name, problems)


def parse_each(
    values: Sequence[RawT],
    parse: Callable[[RawT, str], ParsedT],
    field_name: str,
    problems: Violations | None = None,
    *,
    max_items: int | None = None,
    unique: bool = True,
) -> list[ParsedT]:
    """Each value parsed as `parse(value, "<field_name>[i]")`, the one way a list of inputs is checked.

    Every bad item is named by its index; duplicates (after parsing: `S1` and `s1` are one selector) are dropped
    unless `unique` is False; the order is kept. More than `max_items` values is a violation of the list itself,
    and only the first `max_items` are looked at. With `problems`, violations are added there for the caller to
    raise with those of its other fields; without, InvalidArgument is raised here.
    """
    found = problems if problems is not None else Violations()
    if max_items is not None and len(values) > max_items:
        found.add(field_name, f"at most {max_items} entries ({len(values)} given)")
        values = values[:max_items]
    out: list[ParsedT] = []
    for i, value in enumerate(values):
        try:
            item = parse(value, f"{field_name}[{i}]")
        except InvalidArgument as exc:
            found.items.extend(exc.violations)
            continue
        if not unique or item not in out:
            out.append(item)
    if problems is None:
        raise_if_any(found)
    return out


MAX_CHECKED_IPS = 256
MAX_CHECKED_SELECTORS = 32


def parse_domain_check(
    domain: str, ips: Sequence[str], selectors: Sequence[str], problems: Violations
) -> tuple[str, list[IPAddress], list[str]]:
    """What a domain validation checks: the domain, the IPs sending for it and its DKIM selectors, each bad one
    named (`domain`, `ips[1]`, `dkim_selectors[0]`) in `problems`."""
    name = ""
    try:
        name = normalize_domain(domain, "domain")
    except InvalidArgument as exc:
        problems.items.extend(exc.violations)
    addresses = parse_each(ips, parse_ip, "ips", problems, max_items=MAX_CHECKED_IPS)
    chosen = parse_each(selectors, validate_selector, "dkim_selectors", problems, max_items=MAX_CHECKED_SELECTORS)
    return name, addresses, chosen
