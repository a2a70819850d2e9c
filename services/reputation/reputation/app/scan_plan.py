"""The periodic scans' plan, as it stands now: each tenant's interval and zones, and per IP zone how its daily query
budget is shared out among the tenants (`reputation.domain.query_budget`).

The periodic scan reads it at every tick; ListZones and GetTenantScanSettings show it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address

from reputation.app.unit_of_work import ReputationUnitOfWork
from reputation.app.views import ZoneScanInterval
from reputation.config import ReputationConfig
from reputation.domain.query_budget import TenantLoad, ZonePlan, plan_zone, zone_asked
from reputation.domain.scan_schedule import ScheduledIp, TenantScanInterval, period_of
from reputation.domain.tenant_zones import TenantZoneChoice, TenantZones, zones_for
from reputation.domain.zones import Zone


@dataclass(frozen=True)
class ScanPlan:
    default_interval: timedelta
    schedule: tuple[ScheduledIp, ...]  # every IP in service, with its next scan
    settings: Mapping[str, TenantScanInterval]  # by tenant, for the tenants with IPs (and the one asked about)
    zones: Mapping[str, TenantZones]  # the same tenants' zones
    budgets: Mapping[str, ZonePlan]  # every IP zone of the catalogue, by key

    def interval_of(self, tenant_id: str) -> timedelta:
        setting = self.settings.get(tenant_id)
        return setting.effective(self.default_interval) if setting else self.default_interval

    def ip_zones_of(self, tenant_id: str) -> tuple[Zone, ...]:
        return self.zones[tenant_id].ip_zones

    def zones_asked(self, tenant_id: str, address: str, period: int) -> tuple[Zone, ...]:
        """The tenant's IP zones the IP's scan of `period` asks: each, but a budget-limited one at every n-th."""
        return tuple(
            zone
            for zone in self.ip_zones_of(tenant_id)
            if zone_asked(address=address, zone_key=zone.key, period=period, every=self._every(zone.key, tenant_id))
        )

    def period_of(self, ip: ScheduledIp, now: datetime) -> int:
        return period_of(now, interval=self.interval_of(ip.tenant_id), address=ip.address)

    def zone_intervals(self, tenant_id: str) -> tuple[ZoneScanInterval, ...]:
        interval = self.interval_of(tenant_id)
        every = {zone.key: self._every(zone.key, tenant_id) for zone in self.ip_zones_of(tenant_id)}
        return tuple(ZoneScanInterval(key, interval * n, n > 1) for key, n in every.items())

    def _every(self, zone_key: str, tenant_id: str) -> int:
        plan = self.budgets.get(zone_key)
        return plan.every_for(tenant_id) if plan is not None else 1


def make_plan(
    config: ReputationConfig,
    schedule: Sequence[ScheduledIp],
    choices: Mapping[str, TenantZoneChoice],
    settings: Mapping[str, TenantScanInterval],
) -> ScanPlan:
    """Each IP zone's budget shared out over the tenants' loads: the IPs of each tenant the zone covers (IPv6
    ones only on lists that list IPv6), at the tenant's interval."""
    zones = {
        tenant: zones_for(
            choice,
            catalogue=config.catalogue,
            default_ip=config.default_ip_zones,
            default_domain=config.default_domain_zones,
        )
        for tenant, choice in choices.items()
    }
    families: dict[str, list[int]] = {}  # tenant -> [IPv4 count, IPv6 count]
    for ip in schedule:
        families.setdefault(ip.tenant_id, [0, 0])[ip_address(ip.address).version == 6] += 1

    def interval_of(tenant_id: str) -> timedelta:
        setting = settings.get(tenant_id)
        return setting.effective(config.scan_interval) if setting else config.scan_interval

    budgets: dict[str, ZonePlan] = {}
    for zone in config.catalogue.ip_zones():
        loads = [
            TenantLoad(tenant, v4 + (v6 if zone.supports_ipv6 else 0), interval_of(tenant))
            for tenant, (v4, v6) in sorted(families.items())
            if zone.key in {z.key for z in zones[tenant].ip_zones}
        ]
        budgets[zone.key] = plan_zone(zone_key=zone.key, daily_budget=config.daily_budgets.get(zone.key), loads=loads)
    return ScanPlan(config.scan_interval, tuple(schedule), dict(settings), zones, budgets)


def read_plan(uow: ReputationUnitOfWork, config: ReputationConfig, *also: str) -> ScanPlan:
    """The plan from storage: the IPs in service, their tenants' zones and intervals (and those of `also`)."""
    schedule = uow.ips.scan_schedule()
    tenants = {ip.tenant_id for ip in schedule} | set(also)
    return make_plan(config, schedule, uow.tenant_zones.get_many(tenants), uow.scan_settings.get_many(tenants))
