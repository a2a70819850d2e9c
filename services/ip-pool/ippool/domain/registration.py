"""The facts given when an IP is registered, validated as one request.

Public API:
    Purpose                         -- MARKETING, TRANSACTIONAL
    IpRegistration(address, tenant_id, purpose, pool, pmta_node, helo_hostname)
    validate_registration(*, address, tenant_id, purpose, pool="default", pmta_node=None, helo_hostname=None)
        -> IpRegistration           -- InvalidArgument naming every bad field at once
    validate_tenant_id(value, field_name="tenant_id") -> str   -- 3..63 of a-z 0-9 '-', starting with a letter
    validate_name(value, field_name) -> str          -- pool and node names: a-z 0-9 '-', 1..63
    validate_hostname(value, field_name) -> str      -- a fully qualified host name, lower case, no final dot

Whether the tenant, pool, node or schedule exist, and whether the address is already registered anywhere
(ALREADY_EXISTS), needs the database and is checked by the application layer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from ippool.domain.address import IpAddress, parse_ip_address
from libs.errors import InvalidArgument, Violations

T = TypeVar("T")


class Purpose(StrEnum):
    MARKETING = "MARKETING"
    TRANSACTIONAL = "TRANSACTIONAL"


_TENANT_ID = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class IpRegistration:
    address: IpAddress
    tenant_id: str
    purpose: Purpose
    pool: str
    pmta_node: str | None
    helo_hostname: str | None


def validate_tenant_id(value: object, field_name: str = "tenant_id") -> str:
    """A tenant id as the tenants API accepts it (e.g. `sos-expat`, `ulixai`)."""
    if not isinstance(value, str) or not _TENANT_ID.match(value):
        raise InvalidArgument(field_name, "must be 3-63 lowercase letters, digits or '-', starting with a letter")
    return value


def validate_name(value: object, field_name: str) -> str:
    """A short identifier usable in URLs, PowerMTA names and metrics labels (e.g. `pmta-1`)."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidArgument(
            field_name, "must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
        )
    return value


def validate_hostname(value: object, field_name: str) -> str:
    """A fully qualified host name (HELO and PTR must match it), normalised to lower case."""
    if not isinstance(value, str):
        raise InvalidArgument(field_name, "must be a host name")
    name = value.strip().rstrip(".").lower()
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InvalidArgument(field_name, f"{value!r} is not a fully qualified host name (e.g. mta1.example.com)")
    if labels[-1].isdigit():
        raise InvalidArgument(field_name, f"{value!r} looks like an address, a host name is needed")
    return name


def _parse_purpose(value: object) -> Purpose:
    if isinstance(value, Purpose):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return Purpose(value.strip().upper())
        except ValueError:
            pass
    raise InvalidArgument("purpose", f"must be one of {', '.join(p.value.lower() for p in Purpose)}")


def _attempt(problems: Violations, parse: Callable[[], T]) -> T | None:
    """Run one field's parser, collecting its violation instead of stopping at the first bad field."""
    try:
        return parse()
    except InvalidArgument as error:
        problems.items.extend(error.violations)
        return None


def validate_registration(
    *,
    address: str,
    tenant_id: str,
    purpose: str | Purpose,
    pool: str = "default",
    pmta_node: str | None = None,
    helo_hostname: str | None = None,
) -> IpRegistration:
    """Validate a registration request whole, so nothing is half-written and every bad field is named."""
    problems = Violations()
    parsed_address = _attempt(problems, lambda: parse_ip_address(address))
    parsed_tenant = _attempt(problems, lambda: validate_tenant_id(tenant_id))
    parsed_purpose = _attempt(problems, lambda: _parse_purpose(purpose))
    parsed_pool = _attempt(problems, lambda: validate_name(pool, "pool"))
    parsed_node = _attempt(problems, lambda: validate_name(pmta_node, "pmta_node")) if pmta_node else None
    parsed_helo = (
        _attempt(problems, lambda: validate_hostname(helo_hostname, "helo_hostname")) if helo_hostname else None
    )
    problems.raise_if_any()
    assert parsed_address and parsed_tenant and parsed_purpose and parsed_pool
    return IpRegistration(
        address=parsed_address,
        tenant_id=parsed_tenant,
        purpose=parsed_purpose,
        pool=parsed_pool,
        pmta_node=parsed_node,
        helo_hostname=parsed_helo,
    )
