"""Blocklist scans of watched IPs: now for one IP, now for a tenant, and periodically for everyone.

A run groups the IPs by their tenant's zone choice, checks every zone involved once (RFC 5782 test
points), scans each group with the colleague's `DnsblScanner` over one pipelined `UdpDnsClient` (the async
part, run with `asyncio.run` from the calling thread), then records zone health and each IP's result
(`app.listings`). With no IP to scan, no DNS question is asked at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa

from emailengine.reputation.v1 import reputation_service_pb2 as pb
from libs.auth import Caller
from libs.clock import Clock
from libs.db import Database
from libs.errors import FailedPrecondition, NotFound, Unavailable
from libs.jobs import claim_once, forget_claims_before
from reputation.adapters.dns_client import UdpDnsClient
from reputation.adapters.dnsbl_scanner import DnsblScanner
from reputation.adapters.tables import monitored_ips, scan_results
from reputation.app import protos
from reputation.app.listings import BATCH, Recorded, current_listings, prune_history, record_scans
from reputation.app.metrics import ReputationMetrics
from reputation.app.tenant_zones import choices_for
from reputation.app.zone_health import record_health
from reputation.config import ReputationConfig
from reputation.domain.dnsbl import ZoneHealth
from reputation.domain.scan import ScanResult
from reputation.domain.validation import parse_ip, validate_tenant_id
from reputation.domain.zones import Zone

log = logging.getLogger(__name__)

DEFAULT_HISTORY = 20
MAX_HISTORY = 500


@dataclass(frozen=True)
class WatchedIp:
    address: str
    tenant_id: str
    helo_hostname: str
    active: bool


@dataclass(frozen=True)
class RunResult:
    recorded: list[Recorded]
    health: dict[str, ZoneHealth]


async def scan_async(
    config: ReputationConfig,
    clock: Clock,
    groups: Sequence[tuple[tuple[Zone, ...], list[str]]],
) -> tuple[dict[str, ZoneHealth], list[ScanResult]]:
    """Zone health of every zone involved, then each group's targets against its zones."""
    if not any(zones and targets for zones, targets in groups):
        return {}, []
    union: dict[str, Zone] = {}
    for zones, _targets in groups:
        for zone in zones:
            union.setdefault(zone.key, zone)
    client = UdpDnsClient.from_settings(config.dns)
    try:
        await client.open()
    except OSError as exc:
        raise Unavailable(
            f"DNS: cannot reach the nameservers {', '.join(map(str, config.dns.nameservers))}: {exc}"
        ) from None
    try:
        scanner = DnsblScanner(client, max_in_flight=config.max_in_flight, budgets=config.budgets, clock=clock)
        health = await scanner.check_health(list(union.values()))
        results: list[ScanResult] = []
        for zones, targets in groups:
            results.extend(await scanner.scan(targets, zones, health=health))
        return health, results
    finally:
        await client.close()


class ScanRunner:
    def __init__(self, db: Database, config: ReputationConfig, clock: Clock, metrics: ReputationMetrics) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.metrics = metrics

    def run(self, ips: Sequence[WatchedIp], trigger: str) -> RunResult:
        if not ips:
            return RunResult([], {})
        with self.db.transaction() as session:
            choices = choices_for(session, self.config, {ip.tenant_id for ip in ips})
        by_zones: dict[tuple[str, ...], tuple[tuple[Zone, ...], list[str]]] = {}
        originals: dict[str, str] = {}
        for ip in ips:
            zones = choices[ip.tenant_id].ip_zones
            target = str(parse_ip(ip.address))
            originals[target] = ip.address
            by_zones.setdefault(tuple(z.key for z in zones), (zones, []))[1].append(target)
        started = self.clock.now()
        with self.metrics.scan_seconds.labels(trigger).time():
            health, scans = asyncio.run(scan_async(self.config, self.clock, list(by_zones.values())))
        now = self.clock.now()
        record_health(self.db, health, now)
        scans = [replace(s, target=originals.get(s.target, s.target)) for s in scans]
        recorded: list[Recorded] = []
        for i in range(0, len(scans), BATCH):
            with self.db.transaction() as session:
                recorded.extend(record_scans(session, self.db.is_postgres, scans[i : i + BATCH], trigger, now))
        self.metrics.observe(trigger, recorded, health)
        log.info(
            "scan recorded",
            extra={
                "trigger": trigger,
                "ips": len(recorded),
                "listed": sum(1 for r in recorded if r.scan.is_listed),
                "changes": sum(len(r.changes) for r in recorded),
                "unhealthy_zones": sorted(k for k, h in health.items() if not h.healthy),
                "seconds": round((now - started).total_seconds(), 3),
            },
        )
        return RunResult(recorded, health)


class IpScans:
    """The use cases: CheckIp, GetIpReputation, ScanTenant, and the periodic scan."""

    def __init__(self, db: Database, config: ReputationConfig, clock: Clock, metrics: ReputationMetrics) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.runner = ScanRunner(db, config, clock, metrics)

    # -- reads ----------------------------------------------------------------------------------

    def _watched(self, address: str) -> WatchedIp:
        ip = str(parse_ip(address, "address"))
        with self.db.transaction() as session:
            row = session.execute(sa.select(monitored_ips).where(monitored_ips.c.address == ip)).first()
        if row is None:
            raise NotFound("ip", ip)
        return WatchedIp(row.address, row.tenant_id, row.helo_hostname, row.active)

    def watched_ips(self, tenant_id: str = "") -> list[WatchedIp]:
        query = sa.select(monitored_ips).where(monitored_ips.c.active.is_(True))
        if tenant_id:
            query = query.where(monitored_ips.c.tenant_id == tenant_id)
        with self.db.transaction() as session:
            rows = session.execute(query.order_by(monitored_ips.c.address)).all()
        return [WatchedIp(r.address, r.tenant_id, r.helo_hostname, r.active) for r in rows]

    def get(self, caller: Caller, address: str, history_size: int = 0) -> pb.IpReputation:
        ip = self._watched(address)
        caller.require_read(ip.tenant_id)
        size = DEFAULT_HISTORY if history_size <= 0 else min(history_size, MAX_HISTORY)
        return self._view(ip, size)

    def _view(self, ip: WatchedIp, history_size: int, latest: pb.ScanResult | None = None) -> pb.IpReputation:
        with self.db.transaction() as session:
            rows = session.execute(
                sa.select(scan_results.c.result)
                .where(scan_results.c.address == ip.address)
                .order_by(scan_results.c.scan_time.desc(), scan_results.c.id.desc())
                .limit(history_size + 1)
            ).all()
            listings, _scanned = current_listings(session, ip.address)
        scans = [pb.ScanResult.FromString(r.result) for r in rows]
        reply = pb.IpReputation(
            address=ip.address,
            tenant_id=ip.tenant_id,
            current_listings=[protos.zone_result(item.result) for _key, item in sorted(listings.items())],
            listed=bool(listings),
            watched=ip.active,
        )
        if latest is not None:
            reply.latest.CopyFrom(latest)
        elif scans:
            reply.latest.CopyFrom(scans[0])
            reply.history.extend(scans[1:])
        return reply

    # -- scans ----------------------------------------------------------------------------------

    def check(self, caller: Caller, address: str) -> pb.IpReputation:
        ip = self._watched(address)
        caller.require_write(ip.tenant_id)
        if not ip.active:
            raise FailedPrecondition(f"IP {ip.address} is retired: it is no longer scanned")
        run = self.runner.run([ip], "check")
        if not run.recorded:  # retired or forgotten while we scanned
            raise NotFound("ip", ip.address)
        latest = protos.scan_result(run.recorded[0].scan, "check")
        return self._view(ip, 0, latest)

    def scan_tenant(self, caller: Caller, tenant_id: str) -> pb.ScanTenantResponse:
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_write(tenant)
        run = self.runner.run(self.watched_ips(tenant), "tenant_scan")
        reply = pb.ScanTenantResponse(tenant_id=tenant, scanned=len(run.recorded))
        for item in run.recorded:
            reply.listed += item.scan.is_listed
            reply.incomplete += not item.scan.complete
            reply.changes += len(item.changes)
            reply.ips.append(
                pb.IpReputation(
                    address=item.address,
                    tenant_id=item.tenant_id,
                    latest=protos.scan_result(item.scan, "tenant_scan"),
                    listed=item.scan.is_listed,
                    watched=True,
                )
            )
        return reply

    def periodic(self, owner: str | None = None) -> RunResult | None:
        """One scan of every watched IP per interval slot, whichever replica or worker gets there first.

        Between slots, each tick still scans the IPs never scanned yet, so a newly registered IP is checked
        within a tick (a minute by default), not hours later.
        """
        now = self.clock.now()
        seconds = int(self.config.scan_interval.total_seconds())
        owner = owner or f"{socket.gethostname()}-{os.getpid()}"
        slot_key = f"reputation-scan:{seconds}:{slot_of(now, self.config.scan_interval)}"
        if not claim_once(self.db, slot_key, owner, now):
            fresh = [ip for ip in self.unscanned_ips() if self._claim_first_scan(ip, owner, now)]
            return self.runner.run(fresh, "first") if fresh else None
        # A never-scanned IP that another replica is scanning right now for the first time is left to it.
        unscanned = {ip.address for ip in self.unscanned_ips()}
        ips = [ip for ip in self.watched_ips() if ip.address not in unscanned or self._claim_first_scan(ip, owner, now)]
        run = self.runner.run(ips, "periodic")
        with self.db.transaction() as session:
            pruned = prune_history(session, now - self.config.history)
        forget_claims_before(self.db, now - max(timedelta(days=7), 2 * self.config.scan_interval))
        if pruned:
            log.info("scan history pruned", extra={"rows": pruned})
        return run

    def _claim_first_scan(self, ip: WatchedIp, owner: str, now: datetime) -> bool:
        return claim_once(self.db, f"reputation-first:{ip.address}", owner, now)

    def unscanned_ips(self) -> list[WatchedIp]:
        scanned = sa.select(scan_results.c.address).where(scan_results.c.address == monitored_ips.c.address)
        query = sa.select(monitored_ips).where(monitored_ips.c.active.is_(True), ~scanned.exists())
        with self.db.transaction() as session:
            rows = session.execute(query.order_by(monitored_ips.c.address)).all()
        return [WatchedIp(r.address, r.tenant_id, r.helo_hostname, r.active) for r in rows]


def slot_of(now: datetime, interval: timedelta) -> int:
    """The scan slot `now` falls in: slots are consecutive intervals counted from the Unix epoch."""
    return int(now.timestamp()) // int(interval.total_seconds())
