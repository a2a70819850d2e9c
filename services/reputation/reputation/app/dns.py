"""What the use cases ask of DNS: blocklist scans, and the authentication checks of domains (the scanner port).

`reputation.adapters.dns_checks.ResolverDnsChecks` asks the configured resolvers, everything of one call at once;
the use-case tests use an in-memory fake that asks nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from reputation.domain.checks import CheckKind, DomainReport
from reputation.domain.dnsbl import ZoneHealth
from reputation.domain.scan import ScanResult
from reputation.domain.zones import Zone


@dataclass(frozen=True)
class ScanGroup:
    """Targets (IPs, or domains) looked up on the same zones."""

    zones: tuple[Zone, ...]
    targets: tuple[str, ...]


@dataclass(frozen=True)
class BlocklistScan:
    """Zone health of every zone involved (by key), and per group one result per target, in the order asked."""

    health: dict[str, ZoneHealth] = field(default_factory=dict)
    results: tuple[tuple[ScanResult, ...], ...] = ()

    @property
    def all_results(self) -> list[ScanResult]:
        return [result for group in self.results for result in group]


@dataclass(frozen=True)
class DomainAuthRequest:
    """The DNS authentication checks of one domain: SPF per IP, DKIM per selector, DMARC, PTR per IP, MX."""

    domain: str
    ips: tuple[str, ...] = ()
    dkim_selectors: tuple[str, ...] = ()
    helo_names: Mapping[str, str] = field(default_factory=dict)  # IP -> the HELO name it sends with
    checks: frozenset[CheckKind] | None = None  # only these kinds; None: all


class DnsChecks(Protocol):
    def scan(self, groups: Sequence[ScanGroup]) -> BlocklistScan:
        """Zone health of every zone involved, then each group's targets on its healthy zones. Asks nothing when
        there is no target. Raises `libs.errors.Unavailable` when DNS cannot be reached at all."""
        ...

    def check_domains(
        self, requests: Sequence[DomainAuthRequest], groups: Sequence[ScanGroup]
    ) -> tuple[list[DomainReport], BlocklistScan]:
        """One report per request (in order) and the blocklist scan of the groups, all asked at once."""
        ...
