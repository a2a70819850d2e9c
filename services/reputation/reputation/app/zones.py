"""ListZones (the catalogue with its last known health) and each tenant's zone choice."""

from __future__ import annotations

from emailengine.reputation.v1 import reputation_service_pb2 as pb
from libs.auth import Caller
from libs.clock import Clock
from libs.db import Database
from reputation.app import protos
from reputation.app.listings import drop_zones
from reputation.app.tenant_zones import TenantZoneChoice, choice_for, parse_choice, store_choice
from reputation.app.zone_health import UNCHECKED, health_rows
from reputation.config import ReputationConfig
from reputation.domain.validation import validate_tenant_id


class ZoneUseCases:
    def __init__(self, db: Database, config: ReputationConfig, clock: Clock) -> None:
        self.db = db
        self.config = config
        self.clock = clock

    def list(self) -> pb.ListZonesResponse:
        with self.db.transaction() as session:
            rows = health_rows(session)
        defaults = {z.key for z in self.config.default_ip_zones + self.config.default_domain_zones}
        zones = self.config.catalogue.ip_zones() + self.config.catalogue.domain_zones()
        out = []
        for zone in zones:
            row = rows.get(zone.key, UNCHECKED)
            out.append(
                protos.zone_message(
                    zone,
                    status=row.status,
                    reason=row.reason,
                    checked_at=row.checked_at,
                    changed_at=row.changed_at,
                    default=zone.key in defaults,
                )
            )
        return pb.ListZonesResponse(zones=out)

    def get_for_tenant(self, caller: Caller, tenant_id: str) -> pb.TenantZones:
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_read(tenant)
        with self.db.transaction() as session:
            return _message(choice_for(session, self.config, tenant))

    def set_for_tenant(
        self, caller: Caller, tenant_id: str, ip_zones: list[str], domain_zones: list[str]
    ) -> pb.TenantZones:
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_write(tenant)
        ip, domain = parse_choice(self.config, ip_zones, domain_zones)
        now = self.clock.now()
        with self.db.transaction() as session:
            before = choice_for(session, self.config, tenant)
            store_choice(session, tenant, ip, domain, now, caller.subject)
            after = choice_for(session, self.config, tenant)
            dropped = {z.key for z in before.ip_zones} - {z.key for z in after.ip_zones}
            drop_zones(session, self.db.is_postgres, tenant, dropped, "zone no longer checked for this tenant", now)
            return _message(after)


def _message(choice: TenantZoneChoice) -> pb.TenantZones:
    return pb.TenantZones(
        tenant_id=choice.tenant_id,
        ip_zones=[z.key for z in choice.ip_zones],
        domain_zones=[z.key for z in choice.domain_zones],
        default_ip_zones=choice.default_ip,
        default_domain_zones=choice.default_domain,
        update_time=protos.timestamp(choice.updated_at) if choice.updated_at else None,
    )
