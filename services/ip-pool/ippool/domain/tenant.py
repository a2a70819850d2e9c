"""A tenant (a company that sends) and its policies in one value: time zone and window, health gates,
provider caps, rotation.

Public API:
    TenantPolicy(tenant_id, window=SendingWindow(), health=DEFAULT_HEALTH_POLICY,
                 provider_shares=DEFAULT_PROVIDER_SHARES, rotation=DEFAULT_ROTATION_POLICY,
                 schedule_id="default")
    Tenant(tenant_id, display_name, policy, create_time, update_time=None)
    Tenant.local_day(now) -> date     -- the tenant's sending day at that instant (quotas reset at local midnight)

Each part validates itself; this adds the rules that span two parts (field names are prefixed with the
part, e.g. `rotation.rest_days`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from ippool.domain.health import DEFAULT_HEALTH_POLICY, HealthPolicy
from ippool.domain.providers import DEFAULT_PROVIDER_SHARES, ProviderShares
from ippool.domain.registration import validate_tenant_id
from ippool.domain.rotation import DEFAULT_ROTATION_POLICY, RotationPolicy
from ippool.domain.sending_day import SendingWindow, local_sending_day
from libs.errors import InvalidArgument, Violations


@dataclass(frozen=True)
class TenantPolicy:
    tenant_id: str
    window: SendingWindow = field(default_factory=SendingWindow)
    health: HealthPolicy = DEFAULT_HEALTH_POLICY
    provider_shares: ProviderShares = DEFAULT_PROVIDER_SHARES
    rotation: RotationPolicy = DEFAULT_ROTATION_POLICY
    schedule_id: str = "default"
    """Schedule given to this tenant's new IPs unless the registration names another."""

    def __post_init__(self) -> None:
        problems = Violations()
        try:
            validate_tenant_id(self.tenant_id)
        except InvalidArgument as error:
            problems.items.extend(error.violations)
        if self.rotation.rest_days >= self.health.idle_rewarm_days:
            problems.add(
                "rotation.rest_days",
                f"must be shorter than health.idle_rewarm_days ({self.health.idle_rewarm_days}), "
                "or a rest would restart the whole warmup",
            )
        problems.raise_if_any()


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    display_name: str
    policy: TenantPolicy
    create_time: datetime
    update_time: datetime | None = None

    def local_day(self, now: datetime) -> date:
        return local_sending_day(now, self.policy.window.time_zone)
