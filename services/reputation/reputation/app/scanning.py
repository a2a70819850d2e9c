"""Blocklist scans of watched IPs: now for one IP, now for a tenant, and periodically for everyone.

A run groups the IPs by the zones to ask (their tenant's choice; periodically, without the zones their daily
budget leaves out this time) and hands the groups to the DNS port (zone health first, RFC 5782 test points, then
each group on its zones); then it records zone health and each IP's result (`app.listings`). With no IP to scan,
no DNS question is asked at all.

Periodically each IP is scanned at its own moment of its tenant's interval, once per interval, whichever replica
or worker claims it (`reputation.domain.scan_schedule`); the plan of each zone's daily query budget is in
`app.scan_plan`.
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
from reputation.app.context import ReputationContext, UseCases
from reputation.app.dns import ScanGroup
from reputation.app.listings import BATCH, Recorded, record_scans
from reputation.app.scan_plan import ScanPlan, read_plan
from reputation.app.unit_of_work import ReputationUnitOfWork
from reputation.app.views import IpReputation, TenantScan
from reputation.app.zone_health import record_zone_health
from reputation.app.zones import tenant_zones
from reputation.domain.dnsbl import ZoneHealth
from reputation.domain.scan import IpListings, ScanRecord, ZoneVerdict, slot_of
from reputation.domain.scan_schedule import ScheduledIp, claim_until, next_scan_at, scan_due, too_far
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


@dataclass(frozen=True)
class ScanWork:
    """One IP to scan in a run: the zones to ask, and why ("check", "tenant_scan", "periodic", "first")."""

    address: str
    tenant_id: str
    zones: tuple[Zone, ...]
    trigger: str


def default_owner() -> str:
    """Who claims a slot, in the claims table: this host and process."""
    return f"{socket.gethostname()}-{os.getpid()}"


class IpScans(UseCases):
    """CheckIp, GetIpReputation, ScanTenant, and the periodic scan of every watched IP."""

    def __init__(self, context: ReputationContext) -> None:
        super().__init__(context)
        self._budget_limits: dict[str, dict[str, int]] = {}  # what the last warning said, per zone

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
        """Scans the watched IPs whose moment has come, each once per its tenant's interval, whichever replica or
        worker gets there first (`reputation.domain.scan_schedule`).

        An IP never scheduled (new: a first scan, at the next tick) is due at once; a zone whose daily budget
        cannot afford the interval is asked at every n-th scan of an IP (`reputation.domain.query_budget`). None
        when there was nothing for this caller.
        """
        now = self._clock.now()
        with self._uow() as uow:
            plan = read_plan(uow, self._config)
        self._report_budgets(plan)
        moves: dict[str, tuple[datetime | None, datetime]] = {}
        due: list[ScheduledIp] = []
        for ip in plan.schedule:
            interval = plan.interval_of(ip.tenant_id)
            if scan_due(next_scan_at=ip.next_scan_at, now=now):
                moves[ip.address] = (ip.next_scan_at, claim_until(now, interval=interval))
                due.append(ip)
            elif too_far(next_scan_at=ip.next_scan_at, now=now, interval=interval):
                moves[ip.address] = (ip.next_scan_at, next_scan_at(now, interval=interval, address=ip.address))
        claimed: set[str] = set()
        if moves:
            with self._uow() as uow:
                claimed = uow.ips.move_scans(moves)
                uow.commit()
        mine = [ip for ip in due if ip.address in claimed]
        self._upkeep(now, owner or default_owner())
        if not mine:
            return None
        with self._uow() as uow:
            never = {ip.address for ip in uow.ips.never_scanned()}
        work: list[ScanWork] = []
        nothing_to_ask: list[ScheduledIp] = []
        for ip in mine:
            if ip.address in never:
                work.append(ScanWork(ip.address, ip.tenant_id, plan.ip_zones_of(ip.tenant_id), "first"))
                continue
            zones = plan.zones_asked(ip.tenant_id, ip.address, plan.period_of(ip, now))
            if zones:
                work.append(ScanWork(ip.address, ip.tenant_id, zones, "periodic"))
            else:  # every zone of the tenant waits for a later scan of this IP (budgets)
                nothing_to_ask.append(ip)
        run = self._scan_and_record(work)
        # The next moment of each IP scanned (or with nothing to ask this time); a claim whose scan did not get
        # recorded runs out and the IP is taken again.
        tenants = {ip.address: ip.tenant_id for ip in mine}
        done = [ip.address for ip in nothing_to_ask] + [r.address for r in run.recorded if r.address in tenants]
        with self._uow() as uow:
            uow.ips.move_scans(
                {
                    address: (
                        moves[address][1],
                        next_scan_at(now, interval=plan.interval_of(tenants[address]), address=address),
                    )
                    for address in done
                }
            )
            uow.commit()
        return run

    def _upkeep(self, now: datetime, owner: str) -> None:
        """Once per slot of the installation's interval, by whoever claims it: old scan history and claims go."""
        interval = self._config.scan_interval
        slot = f"reputation-upkeep:{int(interval.total_seconds())}:{slot_of(now, interval)}"
        if not self._claims.claim(slot, owner, now):
            return
        with self._uow() as uow:
            pruned = uow.scans.prune(now - self._config.history)
            uow.commit()
        self._claims.forget_before(now - max(timedelta(days=7), 2 * interval))
        if pruned:
            log.info("scan history pruned", extra={"rows": pruned})

    def _report_budgets(self, plan: ScanPlan) -> None:
        """Metrics of each zone's daily budget, and a warning when a zone starts (or stops) being asked less often
        than some tenant's interval, or for other tenants."""
        self._metrics.observe_budgets(plan.budgets)
        limits = {key: dict(zone.every) for key, zone in plan.budgets.items() if zone.limited}
        if limits == self._budget_limits:
            return
        for key, every in sorted(limits.items()):
            if self._budget_limits.get(key) != every:
                zone = plan.budgets[key]
                log.warning(
                    "zone asked less often than the tenants' scan intervals: its daily query budget cannot afford them",
                    extra={
                        "zone": key,
                        "daily_budget": zone.daily_budget,
                        "wanted_per_day": zone.wanted,
                        "planned_per_day": zone.planned,
                        "every_nth_scan": every,
                    },
                )
        for key in sorted(set(self._budget_limits) - set(limits)):
            log.info("zone's daily query budget affords every tenant's scan interval again", extra={"zone": key})
        self._budget_limits = limits

    def scan_ips(self, ips: Sequence[WatchedIp], trigger: str) -> RunResult:
        """Scans these watched IPs now on each tenant's zones and records the results (zone health, history,
        listing state, events)."""
        if not ips:
            return RunResult([], {})
        with self._uow() as uow:
            choices = uow.tenant_zones.get_many({ip.tenant_id for ip in ips})
        return self._scan_and_record(
            [
                ScanWork(ip.address, ip.tenant_id, tenant_zones(self._config, choices[ip.tenant_id]).ip_zones, trigger)
                for ip in ips
            ]
        )

    def _scan_and_record(self, work: Sequence[ScanWork]) -> RunResult:
        """One DNS run for every IP (grouped by the zones asked), then the results recorded per trigger."""
        if not work:
            return RunResult([], {})
        groups: dict[tuple[str, ...], tuple[tuple[Zone, ...], list[str]]] = {}
        for item in work:
            groups.setdefault(tuple(z.key for z in item.zones), (item.zones, []))[1].append(item.address)
        triggers = {item.address: item.trigger for item in work}
        kinds = list(dict.fromkeys(triggers.values()))
        started = self._clock.now()
        # A periodic run with first scans in it is timed as periodic.
        with self._metrics.scan_seconds.labels(kinds[0] if len(kinds) == 1 else "periodic").time():
            found = self._dns.scan([ScanGroup(zones, tuple(targets)) for zones, targets in groups.values()])
        now = self._clock.now()
        with self._uow() as uow:
            record_zone_health(uow, found.health, now)
            uow.commit()
        recorded: list[Recorded] = []
        for trigger in kinds:
            scans = [scan for scan in found.all_results if triggers.get(scan.target) == trigger]
            mine: list[Recorded] = []
            for i in range(0, len(scans), BATCH):
                with self._uow() as uow:
                    mine.extend(record_scans(uow, scans[i : i + BATCH], trigger, now))
                    uow.commit()
            self._metrics.observe(trigger, mine, found.health)
            recorded.extend(mine)
        log.info(
            "scan recorded",
            extra={
                "trigger": ",".join(kinds),
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
