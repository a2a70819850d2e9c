"""ListZones (the catalogue with its last known health) and each tenant's choice of zones."""

from __future__ import annotations

from collections.abc import Sequence

from libs.auth import Caller
from libs.errors import InvalidArgument, Violations
from reputation.app.context import UseCases
from reputation.app.listings import drop_zones
from reputation.app.scan_plan import read_plan
from reputation.app.views import ZoneStatus
from reputation.config import ReputationConfig
from reputation.domain.dnsbl import ZoneHealthRecord
from reputation.domain.tenant_zones import TenantZoneChoice, TenantZones, zones_for
from reputation.domain.validation import raise_if_any, validate_tenant_id
from reputation.domain.zones import Zone, ZoneKind

# More than the catalogue holds, with room for a zone named twice (by key and by name).
MAX_CHOSEN_ZONES = 64


def tenant_zones(config: ReputationConfig, choice: TenantZoneChoice) -> TenantZones:
    """The zones a tenant's IPs and domains are checked against, from its stored choice."""
    return zones_for(
        choice,
        catalogue=config.catalogue,
        default_ip=config.default_ip_zones,
        default_domain=config.default_domain_zones,
    )


def parse_choice(
    config: ReputationConfig, ip_handles: Sequence[str], domain_handles: Sequence[str]
) -> tuple[tuple[Zone, ...], tuple[Zone, ...]]:
    """Both lists validated whole: every unknown zone, or a zone of the wrong kind, named by its field."""
    problems = Violations()
    chosen: dict[str, tuple[Zone, ...]] = {}
    fields = (("ip_zones", ip_handles, ZoneKind.IP), ("domain_zones", domain_handles, ZoneKind.DOMAIN))
    for field_name, handles, kind in fields:
        try:
            chosen[field_name] = config.catalogue.select(handles, field_name, kind, max_items=MAX_CHOSEN_ZONES)
        except InvalidArgument as exc:
            problems.items.extend(exc.violations)
    raise_if_any(problems)
    return chosen["ip_zones"], chosen["domain_zones"]


class ZoneUseCases(UseCases):
    def list(self) -> list[ZoneStatus]:
        """Every zone with its last known health, and for IP zones how the periodic scans spend its daily query
        budget."""
        with self._uow() as uow:
            health = uow.zone_health.all()
            budgets = read_plan(uow, self._config).budgets
        defaults = {z.key for z in self._config.default_ip_zones + self._config.default_domain_zones}
        zones = self._config.catalogue.ip_zones() + self._config.catalogue.domain_zones()
        return [
            ZoneStatus(z, health.get(z.key) or ZoneHealthRecord(z.key), z.key in defaults, budgets.get(z.key))
            for z in zones
        ]

    def get_for_tenant(self, caller: Caller, tenant_id: str) -> TenantZones:
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_read(tenant)
        with self._uow() as uow:
            return tenant_zones(self._config, uow.tenant_zones.get(tenant))

    def set_for_tenant(
        self, caller: Caller, tenant_id: str, ip_zones: Sequence[str], domain_zones: Sequence[str]
    ) -> TenantZones:
        """Stores the tenant's choice; listings on an IP zone it no longer checks end, each published once."""
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_write(tenant)
        ip, domain = parse_choice(self._config, ip_zones, domain_zones)
        now = self._clock.now()
        choice = TenantZoneChoice(tenant, tuple(z.key for z in ip), tuple(z.key for z in domain), now)
        with self._uow() as uow:
            before = tenant_zones(self._config, uow.tenant_zones.get(tenant))
            uow.tenant_zones.save(choice, caller.subject)
            after = tenant_zones(self._config, choice if not choice.empty else TenantZoneChoice(tenant))
            dropped = {z.key for z in before.ip_zones} - {z.key for z in after.ip_zones}
            drop_zones(uow, tenant, dropped, "zone no longer checked for this tenant", now)
            uow.commit()
        return after
