"""GetTenantScanSettings and UpdateTenantScanSettings: how often a tenant's IPs are scanned, and each of its zones
(`reputation.domain.scan_schedule` says who may choose what)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from libs.auth import Caller
from libs.errors import InvalidArgument
from reputation.app.context import UseCases
from reputation.app.scan_plan import ScanPlan, read_plan
from reputation.app.views import TenantScanSettings
from reputation.domain.scan_schedule import TenantScanInterval, validate_tenant_interval
from reputation.domain.validation import validate_tenant_id

SETTABLE = frozenset({"scan_interval"})


class ScanSettingsUseCases(UseCases):
    def get(self, caller: Caller, tenant_id: str) -> TenantScanSettings:
        tenant = validate_tenant_id(tenant_id or caller.tenant_id)
        caller.require_read(tenant)
        with self._uow() as uow:
            return _view(read_plan(uow, self._config, tenant), tenant)

    def update(
        self, caller: Caller, tenant_id: str, *, interval: timedelta | None, fields: Collection[str] = SETTABLE
    ) -> TenantScanSettings:
        """Sets the fields named (all when none is): the interval, or None for the installation's default. IPs
        planned further away than the new interval are moved at the next tick (see `IpScans.periodic`)."""
        unknown = sorted(set(fields) - SETTABLE)
        if unknown:
            raise InvalidArgument("update_mask", f"unknown field {unknown[0]!r}; known: scan_interval")
        tenant = validate_tenant_id(tenant_id or caller.tenant_id, "settings.tenant_id")
        caller.require_write(tenant)
        if "scan_interval" in fields:
            checked = validate_tenant_interval(
                interval=interval,
                default=self._config.scan_interval,
                by_admin=caller.is_admin,
                minimum=self._config.min_scan_interval,
                field_name="settings.scan_interval",
            )
            with self._uow() as uow:
                uow.scan_settings.save(TenantScanInterval(tenant, checked, self._clock.now()), caller.subject)
                uow.commit()
        return self.get(caller, tenant)


def _view(plan: ScanPlan, tenant_id: str) -> TenantScanSettings:
    setting = plan.settings.get(tenant_id) or TenantScanInterval(tenant_id)
    return TenantScanSettings(
        tenant_id=tenant_id,
        interval=setting.interval,
        effective=plan.interval_of(tenant_id),
        zones=plan.zone_intervals(tenant_id),
        updated_at=setting.updated_at,
    )
