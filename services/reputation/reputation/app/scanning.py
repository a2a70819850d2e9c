"""Blocklist scans of watched IPs: now for one IP, now for a tenant, and periodically for everyone.

A run groups the IPs by their tenant's zone choice and hands the groups to the DNS port (zone health first, RFC
5782 test points, then each group on its zones); then it records zone health and each IP's result
(`app.listings`). With no IP to scan, no DNS question is asked at all.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from libs.auth import Caller
from libs.errors import FailedPrecondition, InvalidArgument, NotFound
from reputation.app.context import UseCases
from reputation.app.dns import ScanGroup
from reputation.app.listings import BATCH, Recorded, record_scans
from reputation.app.unit_of_work import ReputationUnitOfWork
from reputation.app.views import IpReputation, TenantScan
from reputation.app.zone_health import record_zone_health
from reputation.app.zones import tenant_zones
from reputation.domain.dnsbl import ZoneHealth
from reputation.domain.scan import IpListings, ScanRecord, ZoneVerdict, slot_of
from reputation.domain.validation import parse_ip, validate_tenant_id
from reputation.domain.watch import WatchedIp
from reputation.domain.zones import Zone

log = logging.getLogger(__name__)

DEFAULT_HISTORY = 20
MAX_HISTORY = 500


@dataclass(frozen=True)
class RunResult:
    recorded: list[Recorded]
    health: dict[str, ZoneHealth]


def default_owner() -> str:
    """Who claims a slot, in the claims table: this host and process."""
    return f"{socket.gethostname()}-{os.getpid()}"


class IpScans(UseCases):
    """CheckIp, GetIpReputation, ScanTenant, and the periodic scan of every watched IP."""

    def get(self, caller: Caller, address: str, history_size: int = 0) -> IpReputation:
        """The IP's latest scan, its history (newest first) and its current listings, in one unit of work."""
        wanted = str(parse_ip(address, "address"))
        if history_size < 0:
            raise InvalidArgument("history_size", "must not be negative (0 gives the default)")
        size = min(history_size or DEFAULT_HISTORY, MAX_HISTORY)
        with self._uow() as uow:
            ip = self._visible(uow, caller, wanted)
            scans = uow.scans.latest(ip.address, size + 1)
            listings = uow.listings.get(ip.address)
        return _reputation(ip, listings, latest=scans[0] if scans else None, history=tuple(scans[1:]))

    @staticmethod
    def _visible(uow: ReputationUnitOfWork, caller: Caller, address: str) -> WatchedIp:
        """The IP, when the caller may see it. Another tenant's IP is answered exactly like an unknown one: what
        another tenant owns is not to be learnt by trying addresses."""
        ip = uow.ips.get(address)
        if ip is None or not caller.may_read(ip.tenant_id):
            raise NotFound("ip", address)
        return ip

    # -- scans ----------------------------------------------------------------------------------

    def check(self, caller: Caller, address: str) -> IpReputation:
        """Scans one IP now (every CheckIp, within the caller's allowance of on-demand checks)."""
        wanted = str(parse_ip(address, "address"))
        self._limit(caller, self._config.check_limit, "CheckIp")
        with self._uow() as uow:
            ip = self._visible(uow, caller, wanted)
        caller.require_write(ip.tenant_id)
        if not ip.active:
            raise FailedPrecondition(f"IP {ip.address} is retired: it is no longer scanned")
        run = self.scan_ips([ip], "check")
        if not run.recorded:  # retired or forgotten while we scanned
            raise NotFound("ip", ip.address)
        with self._uow() as uow:
            listings = uow.listings.get(ip.address)
        return _reputation(ip, listings, latest=ScanRecord.of(run.recorded[0].scan, "check"))

    def scan_tenant(self, caller: Caller, tenant_id: str) -> TenantScan:
        """Scans every watched IP of a tenant now (every ScanTenant, within the caller's allowance of scans)."""
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_write(tenant)
        self._limit(caller, self._config.tenant_scan_limit, "ScanTenant")
        with self._uow() as uow:
            ips = uow.ips.active(tenant)
        run = self.scan_ips(ips, "tenant_scan")
        return TenantScan(
            tenant_id=tenant,
            ips=tuple(
                IpReputation(
                    address=item.address,
                    tenant_id=item.tenant_id,
                    watched=True,
                    latest=ScanRecord.of(item.scan, "tenant_scan"),
                    listed=item.scan.is_listed,
                )
                for item in run.recorded
            ),
            listed=sum(1 for item in run.recorded if item.scan.is_listed),
            incomplete=sum(1 for item in run.recorded if not item.scan.complete),
            changes=sum(len(item.changes) for item in run.recorded),
        )

    def periodic(self, owner: str | None = None) -> RunResult | None:
        """One scan of every watched IP per interval slot, whichever replica or worker gets there first.

        Between slots, each tick still scans the IPs never scanned yet, so a newly registered IP is checked
        within a tick (a minute by default), not hours later. None when there was nothing for this caller.
        """
        now = self._clock.now()
        seconds = int(self._config.scan_interval.total_seconds())
        owner = owner or default_owner()
        slot = f"reputation-scan:{seconds}:{slot_of(now, self._config.scan_interval)}"
        if not self._claims.claim(slot, owner, now):
            with self._uow() as uow:
                unscanned = uow.ips.never_scanned()
            fresh = [ip for ip in unscanned if self._claim_first_scan(ip, owner, now)]
            return self.scan_ips(fresh, "first") if fresh else None
        with self._uow() as uow:
            first = {ip.address for ip in uow.ips.never_scanned()}
            watched = uow.ips.active()
        # A never-scanned IP that another replica is scanning right now for the first time is left to it.
        ips = [ip for ip in watched if ip.address not in first or self._claim_first_scan(ip, owner, now)]
        run = self.scan_ips(ips, "periodic")
        with self._uow() as uow:
            pruned = uow.scans.prune(now - self._config.history)
            uow.commit()
        self._claims.forget_before(now - max(timedelta(days=7), 2 * self._config.scan_interval))
        if pruned:
            log.info("scan history pruned", extra={"rows": pruned})
        return run

    def _claim_first_scan(self, ip: WatchedIp, owner: str, now: datetime) -> bool:
        return self._claims.claim(f"reputation-first:{ip.address}", owner, now)

    def scan_ips(self, ips: Sequence[WatchedIp], trigger: str) -> RunResult:
        """Scans these watched IPs now and records the results (zone health, history, listing state, events)."""
        if not ips:
            return RunResult([], {})
        with self._uow() as uow:
            choices = uow.tenant_zones.get_many({ip.tenant_id for ip in ips})
        groups: dict[tuple[str, ...], tuple[tuple[Zone, ...], list[str]]] = {}
        for ip in ips:
            zones = tenant_zones(self._config, choices[ip.tenant_id]).ip_zones
            groups.setdefault(tuple(z.key for z in zones), (zones, []))[1].append(ip.address)
        started = self._clock.now()
        with self._metrics.scan_seconds.labels(trigger).time():
            found = self._dns.scan([ScanGroup(zones, tuple(targets)) for zones, targets in groups.values()])
        now = self._clock.now()
        with self._uow() as uow:
            record_zone_health(uow, found.health, now)
            uow.commit()
        scans = found.all_results
        recorded: list[Recorded] = []
        for i in range(0, len(scans), BATCH):
            with self._uow() as uow:
                recorded.extend(record_scans(uow, scans[i : i + BATCH], trigger, now))
                uow.commit()
        self._metrics.observe(trigger, recorded, found.health)
        log.info(
            "scan recorded",
            extra={
                "trigger": trigger,
                "ips": len(recorded),
                "listed": sum(1 for r in recorded if r.scan.is_listed),
                "changes": sum(len(r.changes) for r in recorded),
                "unhealthy_zones": sorted(k for k, h in found.health.items() if not h.healthy),
                "seconds": round((now - started).total_seconds(), 3),
            },
        )
        return RunResult(recorded, found.health)


def _reputation(
    ip: WatchedIp, listings: IpListings | None, *, latest: ScanRecord | None, history: tuple[ScanRecord, ...] = ()
) -> IpReputation:
    current = tuple(ZoneVerdict.of(item.result) for _key, item in sorted((listings.listed if listings else {}).items()))
    return IpReputation(
        address=ip.address,
        tenant_id=ip.tenant_id,
        watched=ip.active,
        latest=latest,
        history=history,
        current_listings=current,
        listed=bool(current),
    )
