"""Blocklist scans: zone health first, then every (target, zone) question with bounded concurrency.

Per zone, a small pool of workers pulls targets and asks the zone; the pool size is the zone's
in-flight budget, and an optional rate and per-scan query cap protect lists with usage terms
(Mailspike: 100 000 queries a day). A listed answer triggers one TXT query for the list's reason.
What the answers *mean* is decided in `reputation.domain.dnsbl.interpret_answer`, nowhere here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from libs.clock import Clock, SystemClock
from libs.errors import InvalidArgument
from reputation.adapters.dns_client import TXT, A, DnsQueryClient
from reputation.domain.dnsbl import (
    ListingStatus,
    ZoneHealth,
    ZoneResult,
    assess_zone_health,
    interpret_answer,
    probe_names,
    query_name,
    result_for_unhealthy,
    skipped,
    zone_covers,
)
from reputation.domain.scan import ScanResult
from reputation.domain.validation import IPAddress, normalize_domain, parse_each, parse_ip, quoted
from reputation.domain.zones import Zone, ZoneKind

Target = IPAddress | str


@dataclass(frozen=True)
class ZoneBudget:
    """How hard one zone may be asked during one scan."""

    max_in_flight: int = 64  # concurrent questions to this zone
    max_qps: float | None = None  # questions per second, None = unlimited
    max_queries: int | None = None  # questions per scan; beyond, targets are SKIPPED (never clean)


class _Pacer:
    """Spaces questions `1/qps` apart across a zone's workers."""

    def __init__(self, qps: float) -> None:
        self.interval = 1.0 / qps
        self.next_slot = 0.0

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def parse_target(value: Target, field_name: str = "targets") -> Target:
    """An IP (v4/v6) or a domain name; anything else is rejected with the field named."""
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    try:
        return parse_ip(value, field_name)
    except InvalidArgument:
        pass
    try:
        return normalize_domain(value, field_name)
    except InvalidArgument:
        raise InvalidArgument(field_name, f"{quoted(value)} is neither an IP address nor a domain name") from None


class DnsblScanner:
    """Scans IPs on IP lists and domains on domain lists through one `DnsQueryClient`."""

    def __init__(
        self,
        client: DnsQueryClient,
        *,
        max_in_flight: int = 512,
        budgets: Mapping[str, ZoneBudget] | None = None,
        default_budget: ZoneBudget | None = None,
        fetch_reasons: bool = True,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.max_in_flight = max(1, max_in_flight)
        self.budgets = dict(budgets or {})
        self.default_budget = default_budget or ZoneBudget()
        self.fetch_reasons = fetch_reasons
        self.clock = clock or SystemClock()

    def budget_for(self, zone: Zone) -> ZoneBudget:
        return self.budgets.get(zone.key) or self.budgets.get(zone.name) or self.default_budget

    async def check_health(self, zones: Sequence[Zone]) -> dict[str, ZoneHealth]:
        """RFC 5782 §7 test points of every zone, all at once; keyed by zone key."""

        async def one(zone: Zone) -> ZoneHealth:
            listed_name, clean_name = probe_names(zone)
            listed, clean = await asyncio.gather(self.client.query(listed_name, A), self.client.query(clean_name, A))
            return assess_zone_health(zone, listed, clean)

        results = await asyncio.gather(*(one(z) for z in zones))
        return {h.zone_key: h for h in results}

    async def scan(
        self,
        targets: Sequence[Target],
        zones: Sequence[Zone],
        *,
        health: Mapping[str, ZoneHealth] | None = None,
    ) -> list[ScanResult]:
        """One `ScanResult` per target (input order): each covered zone LISTED/…/UNKNOWN/SKIPPED.

        `health` may be passed when a cycle already checked the zones; otherwise it is checked here.
        IP targets meet IP zones (IPv6 only those that list IPv6), domains meet domain lists.
        """
        parsed = self._parse_targets(targets)
        started = self.clock.now()
        if health is None:
            health = await self.check_health(zones)
        per_target: list[dict[str, ZoneResult]] = [{} for _ in parsed]
        active: list[tuple[Zone, list[int]]] = []
        for zone in zones:
            covered = [i for i, t in enumerate(parsed) if zone_covers(zone, t)]
            if not covered:
                continue
            zone_health = health.get(zone.key)
            if zone_health is None or not zone_health.healthy:
                result = result_for_unhealthy(zone, zone_health)
                for i in covered:
                    per_target[i][zone.key] = result
                continue
            active.append((zone, covered))
        await asyncio.gather(*(self._scan_zone(z, parsed, c, per_target, len(active)) for z, c in active))
        finished = self.clock.now()
        health_list = tuple(health[z.key] for z in zones if z.key in health)
        out: list[ScanResult] = []
        for target, results in zip(parsed, per_target, strict=True):
            kind = ZoneKind.DOMAIN if isinstance(target, str) else ZoneKind.IP
            ordered = tuple(results[z.key] for z in zones if z.key in results)
            out.append(ScanResult(str(target), kind, started, finished, ordered, health_list))
        return out

    async def scan_one(self, target: Target, zones: Sequence[Zone]) -> ScanResult:
        return (await self.scan([target], zones))[0]

    def _parse_targets(self, targets: Sequence[Target]) -> list[Target]:
        # Duplicates stay: there is one result per target asked, in the order asked.
        return parse_each(targets, parse_target, "targets", unique=False)

    async def _scan_zone(
        self,
        zone: Zone,
        targets: list[Target],
        covered: list[int],
        out: list[dict[str, ZoneResult]],
        zone_count: int,
    ) -> None:
        budget = self.budget_for(zone)
        workers = max(1, min(budget.max_in_flight, -(-self.max_in_flight // max(1, zone_count)), len(covered)))
        pacer = _Pacer(budget.max_qps) if budget.max_qps else None
        remaining = [budget.max_queries] if budget.max_queries is not None else None
        work: Iterator[int] = iter(covered)
        over_budget = skipped(zone, f"query budget of {budget.max_queries} questions per scan used up")
        client = self.client
        fetch_reasons = self.fetch_reasons

        def take() -> bool:
            if remaining is None:
                return True
            if remaining[0] <= 0:
                return False
            remaining[0] -= 1
            return True

        async def worker() -> None:
            for i in work:
                if not take():
                    out[i][zone.key] = over_budget
                    continue
                if pacer is not None:
                    await pacer.wait()
                name = query_name(zone, targets[i])
                answer = await client.query(name, A)
                result = interpret_answer(zone, answer)
                if result.status is ListingStatus.LISTED and fetch_reasons and take():
                    if pacer is not None:
                        await pacer.wait()
                    txt = await client.query(name, TXT)  # the list's own words; a listing stands without
                    if txt.records:
                        result = interpret_answer(zone, answer, " | ".join(txt.records))
                out[i][zone.key] = result

        await asyncio.gather(*(worker() for _ in range(workers)))
