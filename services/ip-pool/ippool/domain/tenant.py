"""A tenant's policies in one value: time zone and window, health gates, provider caps, rotation.

Public API:
    TenantPolicy(tenant_id, window=SendingWindow(), health=DEFAULT_HEALTH_POLICY,
                 provider_shares=DEFAULT_PROVIDER_SHARES, rotation=DEFAULT_ROTATION_POLICY,
                 schedule_id="default")

Each part validates itself; this adds the rules that span two parts (field names are prefixed with the
part, e.g. `rotation.rest_days`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ippool.domain.health import DEFAULT_HEALTH_POLICY, HealthPolicy
from ippool.domain.providers import DEFAULT_PROVIDER_SHARES, ProviderShares
from ippool.domain.registration import validate_tenant_id
from ippool.domain.rotation import DEFAULT_ROTATION_POLICY, RotationPolicy
from ippool.domain.sending_day import SendingWindow
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
