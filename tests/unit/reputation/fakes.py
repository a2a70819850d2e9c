"""In-memory stand-ins for the reputation use cases' ports: the unit of work with its repositories, the DNS port
and the slot claims. The use cases run on them in milliseconds, with no socket and no database.

The fake DNS answers with the real interpretation rules (`reputation.domain.dnsbl`): a test sets what a zone says
about a target (`dns.answer(zone_key, target, "127.0.0.2")`, `dns.fail(...)`) and the zone's health.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from ipaddress import ip_address
from typing import Any, NoReturn

from prometheus_client import CollectorRegistry

from libs.clock import Clock, FakeClock
from reputation.app.context import ReputationContext
from reputation.app.dns import BlocklistScan, DomainAuthRequest, ScanGroup
from reputation.app.metrics import ReputationMetrics
from reputation.config import ReputationConfig
from reputation.domain.checks import CheckResult, DomainReport
from reputation.domain.dnsbl import (
    DnsAnswer,
    DnsOutcome,
    HealthStatus,
    ZoneHealth,
    ZoneHealthRecord,
    interpret_answer,
    result_for_unhealthy,
    zone_covers,
)
from reputation.domain.scan import IpListings, ScanRecord, ScanResult
from reputation.domain.scan_schedule import ScheduledIp, TenantScanInterval
from reputation.domain.tenant_domains import CheckKey, CheckState, TenantDomainList
from reputation.domain.tenant_zones import TenantZoneChoice
from reputation.domain.watch import WatchedIp
from reputation.domain.zones import ZoneKind
from tests.fakes import FakeStore, FakeUnitOfWork


class _Table(dict):  # type: ignore[type-arg]
    """Rows of immutable values: a unit of work's private copy needs a new table, not new rows."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Table:
        return _Table(self)


def _table(tables: dict[str, Any], name: str) -> Any:
    return tables.setdefault(name, _Table())


class FakeWatchedIps:
    def __init__(self, tables: dict[str, Any]):
        self._rows: dict[str, WatchedIp] = _table(tables, "monitored_ips")
        self.registered_at: dict[str, datetime] = _table(tables, "registered_at")
        self.last_scan_at: dict[str, datetime] = _table(tables, "last_scan_at")
        self.next_scan_at: dict[str, datetime] = _table(tables, "next_scan_at")
        self._history: dict[int, tuple[str, str, ScanRecord]] = _table(tables, "scan_results")

    def get(self, address: str) -> WatchedIp | None:
        return self._rows.get(address)

    def register(self, ip: WatchedIp, registered_at: datetime) -> None:
        self.registered_at.setdefault(ip.address, registered_at)
        self._rows[ip.address] = replace(ip, active=True)

    def retire(self, address: str) -> None:
        if address in self._rows:
            self._rows[address] = replace(self._rows[address], active=False)

    def active(self, tenant_id: str = "") -> list[WatchedIp]:
        return [
            ip for _a, ip in sorted(self._rows.items()) if ip.active and (not tenant_id or ip.tenant_id == tenant_id)
        ]

    def never_scanned(self) -> list[WatchedIp]:
        scanned = {address for address, _t, _r in self._history.values()}
        return [ip for ip in self.active() if ip.address not in scanned]

    def helo_names(self, tenant_id: str, addresses: Collection[str]) -> dict[str, str]:
        return {a: ip.helo_hostname for a, ip in self._rows.items() if a in addresses and ip.tenant_id == tenant_id}

    def lock(self, addresses: Sequence[str]) -> dict[str, str]:
        return {a: self._rows[a].tenant_id for a in addresses if a in self._rows}

    def mark_scanned(self, scanned_at: Mapping[str, datetime]) -> None:
        self.last_scan_at.update(scanned_at)

    def scan_schedule(self) -> list[ScheduledIp]:
        return [
            ScheduledIp(ip.address, ip.tenant_id, self.next_scan_at.get(ip.address), self.registered_at.get(ip.address))
            for ip in self.active()
        ]

    def move_scans(self, moves: Mapping[str, tuple[datetime | None, datetime]]) -> set[str]:
        moved = set()
        for address, (seen, new) in sorted(moves.items()):
            ip = self._rows.get(address)
            if ip is not None and ip.active and self.next_scan_at.get(address) == seen:
                self.next_scan_at[address] = new
                moved.add(address)
        return moved


class FakeScanHistory:
    def __init__(self, tables: dict[str, Any]):
        self._rows: dict[int, tuple[str, str, ScanRecord]] = _table(tables, "scan_results")

    def add(self, entries: Sequence[tuple[str, str, ScanRecord]]) -> None:
        for entry in entries:
            self._rows[max(self._rows, default=0) + 1] = entry

    def latest(self, address: str, limit: int) -> list[ScanRecord]:
        mine = [(r.scan_time, i, r) for i, (a, _t, r) in self._rows.items() if a == address]
        return [r for _time, _i, r in sorted(mine, key=lambda item: item[:2], reverse=True)][:limit]

    def prune(self, before: datetime) -> int:
        latest = {a: max(i for i, (b, _t, _r) in self._rows.items() if b == a) for a, _t, _r in self._rows.values()}
        old = [i for i, (a, _t, r) in self._rows.items() if r.scan_time < before and latest[a] != i]
        for i in old:
            del self._rows[i]
        return len(old)


class FakeIpListings:
    def __init__(self, tables: dict[str, Any]):
        self._rows: dict[str, IpListings] = _table(tables, "ip_listings")

    def get(self, address: str) -> IpListings | None:
        return self._rows.get(address)

    def get_many(self, addresses: Collection[str]) -> dict[str, IpListings]:
        return {a: self._rows[a] for a in addresses if a in self._rows}

    def of_tenant(self, tenant_id: str) -> list[IpListings]:
        return [item for _a, item in sorted(self._rows.items()) if item.tenant_id == tenant_id]

    def add(self, items: Sequence[IpListings]) -> None:
        for item in items:
            assert item.address not in self._rows, f"{item.address} added twice"
            self._rows[item.address] = item

    def update(self, items: Sequence[IpListings]) -> None:
        for item in items:
            assert item.address in self._rows, f"{item.address} updated before it was added"
            self._rows[item.address] = item


class FakeZoneHealth:
    def __init__(self, tables: dict[str, Any]):
        self._rows: dict[str, ZoneHealthRecord] = _table(tables, "zone_health")

    def all(self) -> dict[str, ZoneHealthRecord]:
        return dict(self._rows)

    def lock(self, zone_keys: Sequence[str], now: datetime) -> dict[str, ZoneHealthRecord]:
        for key in zone_keys:
            self._rows.setdefault(key, ZoneHealthRecord(key, HealthStatus.UNCHECKED, "", now, now))
        return {k: self._rows[k] for k in zone_keys}

    def save(self, records: Sequence[ZoneHealthRecord]) -> None:
        self._rows.update({r.zone_key: r for r in records})


class FakeTenantZones:
    def __init__(self, tables: dict[str, Any]):
        self._rows: dict[str, tuple[TenantZoneChoice, str]] = _table(tables, "tenant_zones")

    def get(self, tenant_id: str) -> TenantZoneChoice:
        return self._rows[tenant_id][0] if tenant_id in self._rows else TenantZoneChoice(tenant_id)

    def get_many(self, tenant_ids: Collection[str]) -> dict[str, TenantZoneChoice]:
        return {t: self.get(t) for t in tenant_ids}

    def save(self, choice: TenantZoneChoice, actor: str) -> None:
        self._rows.pop(choice.tenant_id, None)
        if not choice.empty:
            self._rows[choice.tenant_id] = (choice, actor)


class FakeTenantScanSettings:
    def __init__(self, tables: dict[str, Any]):
        self._rows: dict[str, TenantScanInterval] = _table(tables, "tenant_scan_settings")

    def get_many(self, tenant_ids: Collection[str]) -> dict[str, TenantScanInterval]:
        return {t: self._rows.get(t) or TenantScanInterval(t) for t in tenant_ids}

    def save(self, setting: TenantScanInterval, actor: str) -> None:
        self._rows.pop(setting.tenant_id, None)
        if setting.interval is not None:
            self._rows[setting.tenant_id] = setting


class FakeTenantDomains:
    def __init__(self, tables: dict[str, Any]):
        self._rows: dict[str, TenantDomainList] = _table(tables, "tenant_domains")

    def get(self, tenant_id: str) -> TenantDomainList:
        return self._rows.get(tenant_id) or TenantDomainList(tenant_id)

    def all(self) -> list[TenantDomainList]:
        return [d for _t, d in sorted(self._rows.items())]

    def lock(self, tenant_id: str) -> None:
        pass

    def save(self, domains: TenantDomainList, actor: str) -> None:
        if domains.empty:
            self._rows.pop(domains.tenant_id, None)
        else:
            self._rows[domains.tenant_id] = domains

    def mark_checked(self, tenant_id: str, checked_at: datetime) -> None:
        if tenant_id in self._rows:
            self._rows[tenant_id] = replace(self._rows[tenant_id], checked_at=checked_at)


class FakeDomainChecks:
    def __init__(self, tables: dict[str, Any]):
        self._rows: dict[tuple[str, CheckKey], CheckState] = _table(tables, "domain_check_state")

    def of_tenant(self, tenant_id: str) -> dict[CheckKey, CheckState]:
        return {key: state for (tenant, key), state in self._rows.items() if tenant == tenant_id}

    def add(self, tenant_id: str, state: CheckState) -> None:
        assert (tenant_id, state.key) not in self._rows
        self._rows[(tenant_id, state.key)] = state

    def update(self, tenant_id: str, state: CheckState) -> None:
        assert (tenant_id, state.key) in self._rows
        self._rows[(tenant_id, state.key)] = state

    def forget(self, tenant_id: str, keys: Collection[CheckKey]) -> None:
        for key in keys:
            self._rows.pop((tenant_id, key), None)


class FakeReputationUnitOfWork(FakeUnitOfWork):
    ips: FakeWatchedIps
    scans: FakeScanHistory
    listings: FakeIpListings
    zone_health: FakeZoneHealth
    tenant_zones: FakeTenantZones
    tenant_domains: FakeTenantDomains
    domain_checks: FakeDomainChecks
    scan_settings: FakeTenantScanSettings

    def _bind(self, tables: dict[str, Any]) -> None:
        self.ips = FakeWatchedIps(tables)
        self.scans = FakeScanHistory(tables)
        self.listings = FakeIpListings(tables)
        self.zone_health = FakeZoneHealth(tables)
        self.tenant_zones = FakeTenantZones(tables)
        self.tenant_domains = FakeTenantDomains(tables)
        self.domain_checks = FakeDomainChecks(tables)
        self.scan_settings = FakeTenantScanSettings(tables)


@dataclass
class FakeDns:
    """Answers from tables the test fills; every zone healthy unless told otherwise; NXDOMAIN by default."""

    clock: Clock
    answers: dict[tuple[str, str], DnsAnswer] = field(default_factory=dict)
    health: dict[str, ZoneHealth] = field(default_factory=dict)
    auth: dict[str, tuple[CheckResult, ...]] = field(default_factory=dict)
    scans: int = 0  # calls that asked anything
    queries: Counter[str] = field(default_factory=Counter)  # questions asked of each zone (health probes aside)

    def answer(self, zone_key: str, target: str, *addresses: str) -> None:
        """What the zone says about the target: an A record per address (none: NXDOMAIN)."""
        outcome = DnsOutcome.ANSWER if addresses else DnsOutcome.NXDOMAIN
        self.answers[(zone_key, target)] = DnsAnswer(outcome, tuple(addresses))

    def fail(self, zone_key: str, target: str, outcome: DnsOutcome = DnsOutcome.TIMEOUT) -> None:
        self.answers[(zone_key, target)] = DnsAnswer(outcome, detail="the fake resolver was told to fail")

    def scan(self, groups: Sequence[ScanGroup]) -> BlocklistScan:
        if not any(g.zones and g.targets for g in groups):
            return BlocklistScan(results=tuple(() for _ in groups))
        self.scans += 1
        now = self.clock.now()
        zones = {z.key: z for g in groups for z in g.zones}
        health = {k: self.health.get(k) or ZoneHealth(k, z.name, True) for k, z in zones.items()}
        results = []
        for group in groups:
            found = []
            for target in group.targets:
                kind = ZoneKind.IP if _is_ip(target) else ZoneKind.DOMAIN
                subject = ip_address(target) if kind is ZoneKind.IP else target
                per_zone = []
                for zone in group.zones:
                    if not zone_covers(zone, subject):
                        continue
                    if not health[zone.key].healthy:
                        per_zone.append(result_for_unhealthy(zone, health[zone.key]))
                        continue
                    self.queries[zone.key] += 1
                    answer = self.answers.get((zone.key, target), DnsAnswer(DnsOutcome.NXDOMAIN))
                    per_zone.append(interpret_answer(zone, answer))
                found.append(ScanResult(target, kind, now, now, tuple(per_zone), tuple(health.values())))
            results.append(tuple(found))
        return BlocklistScan(health, tuple(results))

    def check_domains(
        self, requests: Sequence[DomainAuthRequest], groups: Sequence[ScanGroup]
    ) -> tuple[list[DomainReport], BlocklistScan]:
        now = self.clock.now()
        return [DomainReport(r.domain, now, self.auth.get(r.domain, ())) for r in requests], self.scan(groups)


def _is_ip(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


class NoDns:
    """A DNS port for tests of storage alone: asking it anything fails the test."""

    def scan(self, groups: object) -> NoReturn:
        raise AssertionError("no DNS question expected")

    def check_domains(self, requests: object, groups: object) -> NoReturn:
        raise AssertionError("no DNS question expected")


class FakeClaims:
    def __init__(self) -> None:
        self.taken: dict[str, str] = {}

    def claim(self, key: str, owner: str, now: datetime) -> bool:
        if key in self.taken:
            return False
        self.taken[key] = owner
        return True

    def forget_before(self, before: datetime) -> None:
        pass


@dataclass
class FakeReputation:
    """Everything a use-case test needs: the store, the clock, the DNS, the claims and the context."""

    store: FakeStore
    clock: FakeClock
    dns: FakeDns
    claims: FakeClaims
    context: ReputationContext


def fake_reputation(
    config: ReputationConfig, clock: FakeClock | None = None, registry: CollectorRegistry | None = None
) -> FakeReputation:
    store = FakeStore()
    clock = clock or FakeClock()
    dns = FakeDns(clock)
    claims = FakeClaims()
    context = ReputationContext(
        unit_of_work=lambda: FakeReputationUnitOfWork(store),
        config=config,
        clock=clock,
        dns=dns,
        claims=claims,
        metrics=ReputationMetrics(registry or CollectorRegistry()),
        limiter=NoLimits(),
    )
    return FakeReputation(store, clock, dns, claims, context)


class NoLimits:
    """The use-case tests call as often as they like; the limits are tested on their own."""

    def acquire(self, key: str, limit: object, *, what: str) -> None:
        pass
