"""The DNS port of the use cases (`reputation.app.dns.DnsChecks`) over the configured resolvers.

A call runs on its own event loop (`asyncio.run` from the calling thread): blocklist scans go through
`DnsblScanner` over one pipelined `UdpDnsClient`, the authentication checks through `DomainChecker`, all of one
call at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from libs.clock import Clock
from libs.errors import Unavailable
from reputation.adapters.dns_client import DnsSettings, UdpDnsClient
from reputation.adapters.dnsbl_scanner import DnsblScanner, ZoneBudget
from reputation.adapters.domain_checks import DomainChecker
from reputation.app.dns import BlocklistScan, DomainAuthRequest, ScanGroup
from reputation.domain.checks import DomainReport
from reputation.domain.zones import Zone

# Domains whose authentication checks run at once (each runs its own checks concurrently).
MAX_DOMAINS_IN_FLIGHT = 16


class ResolverDnsChecks:
    def __init__(
        self, settings: DnsSettings, *, clock: Clock, max_in_flight: int, budgets: Mapping[str, ZoneBudget]
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._max_in_flight = max_in_flight
        self._budgets = budgets

    def scan(self, groups: Sequence[ScanGroup]) -> BlocklistScan:
        return asyncio.run(self._scan(groups))

    def check_domains(
        self, requests: Sequence[DomainAuthRequest], groups: Sequence[ScanGroup]
    ) -> tuple[list[DomainReport], BlocklistScan]:
        return asyncio.run(self._check_domains(requests, groups))

    async def _check_domains(
        self, requests: Sequence[DomainAuthRequest], groups: Sequence[ScanGroup]
    ) -> tuple[list[DomainReport], BlocklistScan]:
        checker = DomainChecker.from_settings(self._settings, clock=self._clock)
        limit = asyncio.Semaphore(MAX_DOMAINS_IN_FLIGHT)

        async def authenticate(request: DomainAuthRequest) -> DomainReport:
            async with limit:
                return await checker.validate_domain(
                    request.domain,
                    request.ips,
                    request.dkim_selectors,
                    helo_names=request.helo_names,
                    checks=request.checks,
                )

        *reports, scanned = await asyncio.gather(*(authenticate(r) for r in requests), self._scan(groups))
        return list(reports), scanned

    async def _scan(self, groups: Sequence[ScanGroup]) -> BlocklistScan:
        """Zone health of every zone involved, then each group's targets against its zones."""
        if not any(group.zones and group.targets for group in groups):
            return BlocklistScan(results=tuple(() for _ in groups))
        union: dict[str, Zone] = {}
        for group in groups:
            for zone in group.zones:
                union.setdefault(zone.key, zone)
        client = UdpDnsClient.from_settings(self._settings)
        try:
            await client.open()
        except OSError as exc:
            servers = ", ".join(map(str, self._settings.nameservers))
            raise Unavailable(f"DNS: cannot reach the nameservers {servers}: {exc}") from None
        try:
            scanner = DnsblScanner(client, max_in_flight=self._max_in_flight, budgets=self._budgets, clock=self._clock)
            health = await scanner.check_health(list(union.values()))
            results = []
            for group in groups:
                found = await scanner.scan(group.targets, group.zones, health=health) if group.zones else []
                results.append(tuple(found))
            return BlocklistScan(health, tuple(results))
        finally:
            await client.close()
