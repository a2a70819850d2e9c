"""The reputation service's settings (EE_REPUTATION_*, EE_DNS_*), read and validated once at start into a
`ReputationConfig`.

Each variable is typed and bounded where it is declared; what needs the zone catalogue (zone keys, retargeted
names) is checked in `build_config`. A bad value stops the process with one line naming the variable, as for
the platform settings.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from libs.config import load
from libs.errors import InvalidArgument
from libs.rate_limit import Limit
from reputation.adapters.dns_client import DnsSettings, Nameserver, parse_nameservers, system_nameservers
from reputation.adapters.dnsbl_scanner import ZoneBudget
from reputation.domain.scan import DEFAULT_SCAN_INTERVAL, MIN_SCAN_INTERVAL, validate_scan_interval
from reputation.domain.zones import DEFAULT_CATALOGUE, Zone, ZoneCatalogue, ZoneKind

# The two allowances a tenant's on-demand DNS use draws on.
CHECKS = "reputation-checks"  # CheckIp, ValidateDomain
TENANT_SCANS = "reputation-tenant-scans"  # ScanTenant, CheckTenantDomains

SCAN_INTERVAL_ENV = "EE_REPUTATION_SCAN_INTERVAL_SECONDS"
DOMAIN_CHECK_INTERVAL_ENV = "EE_REPUTATION_DOMAIN_CHECK_INTERVAL_SECONDS"


def _comma_separated(value: object) -> object:
    """A list variable is written `a,b,c` (empty = none), not as JSON."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class DnsEnvSettings(BaseSettings):
    """EE_DNS_*: the resolver every DNS question of the service goes to."""

    model_config = SettingsConfigDict(env_prefix="EE_DNS_", extra="ignore")

    nameservers: Annotated[tuple[Nameserver, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated host:port of the operator's own recursive resolver(s); empty = /etc/resolv.conf",
    )
    timeout: float = Field(
        default=2.0, ge=0.05, le=60, description="Seconds one DNS question may take, retries included (0.05-60)"
    )

    @field_validator("nameservers", mode="before")
    @classmethod
    def _parse_nameservers(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return parse_nameservers(value)
        except InvalidArgument as exc:
            raise ValueError(exc.violations[0].description) from None

    def resolver(self) -> DnsSettings:
        """What the DNS clients are built with: the nameservers given, else those of /etc/resolv.conf."""
        return DnsSettings(
            self.nameservers or system_nameservers(), timeout=self.timeout, check_timeout=max(10.0, 5 * self.timeout)
        )


class ZoneBudgetSetting(BaseModel):
    max_in_flight: int = Field(default=64, ge=1, le=4096)
    max_qps: float | None = Field(default=None, gt=0)
    max_queries: int | None = Field(default=None, ge=1)
    # Periodic scans of every tenant together; absent: the zone's free-use terms (catalogue); 0: no daily budget.
    max_queries_per_day: int | None = Field(default=None, ge=0)


class ReputationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EE_REPUTATION_", extra="ignore")

    scan_interval_seconds: int = Field(
        default=int(DEFAULT_SCAN_INTERVAL.total_seconds()),
        description="Every watched IP is scanned once per interval unless its tenant has its own (60 s to 7 days)",
    )
    min_scan_interval_seconds: int = Field(
        default=int(MIN_SCAN_INTERVAL.total_seconds()),
        ge=1,
        le=int(MIN_SCAN_INTERVAL.total_seconds()),
        description="The shortest interval an admin may give a tenant (1-60 s); below 60 s only for zones of your "
        "own (a private mirror, a test's rbldnsd): the public lists' terms forbid it",
    )
    domain_check_interval_seconds: int = Field(
        default=int(DEFAULT_SCAN_INTERVAL.total_seconds()),
        description="Every tenant's sending and tracking domains are checked once per interval (60 s to 7 days)",
    )
    scan_tick_seconds: float = Field(
        default=60, gt=0, le=3600, description="How often a replica looks for IPs whose scan moment has come"
    )
    ip_zones: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated default IP zones (keys); empty = the 9 built-in"
    )
    domain_zones: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated default domain zones; empty = DBL, SURBL, URIBL"
    )
    zone_names: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {zone key: DNS name queried instead}, e.g. {"spamhaus-zen": "<key>.zen.dq.spamhaus.net"}',
    )
    zone_budgets: dict[str, ZoneBudgetSetting] = Field(
        default_factory=dict,
        description='JSON {zone key: {"max_in_flight", "max_qps", "max_queries"}} per scan, and '
        '"max_queries_per_day" for the periodic scans of every tenant together',
    )
    max_in_flight: int = Field(default=512, ge=1, le=8192, description="DNS questions in flight during a scan")
    history_days: int = Field(default=90, ge=1, le=3650, description="Scan results kept per IP")
    checks_per_minute: float = Field(
        default=30, gt=0, le=6000, description="On-demand CheckIp and ValidateDomain calls per tenant and minute"
    )
    checks_burst: int = Field(default=10, ge=1, le=1000, description="...of which this many at once")
    tenant_scans_per_hour: float = Field(
        default=12, gt=0, le=3600, description="On-demand ScanTenant and CheckTenantDomains calls per tenant and hour"
    )
    tenant_scans_burst: int = Field(default=3, ge=1, le=100, description="...of which this many at once")

    _split_zones = field_validator("ip_zones", "domain_zones", mode="before")(_comma_separated)


@dataclass(frozen=True)
class ReputationConfig:
    """Everything the use cases need from the environment, validated."""

    dns: DnsSettings
    catalogue: ZoneCatalogue = DEFAULT_CATALOGUE
    default_ip_zones: tuple[Zone, ...] = field(default_factory=DEFAULT_CATALOGUE.ip_zones)
    default_domain_zones: tuple[Zone, ...] = field(default_factory=DEFAULT_CATALOGUE.domain_zones)
    budgets: Mapping[str, ZoneBudget] = field(default_factory=dict)
    # Queries a day the periodic scans may send each IP zone, every tenant together (absent: no budget).
    daily_budgets: Mapping[str, int] = field(default_factory=lambda: default_daily_budgets(DEFAULT_CATALOGUE))
    max_in_flight: int = 512
    scan_interval: timedelta = DEFAULT_SCAN_INTERVAL
    min_scan_interval: timedelta = MIN_SCAN_INTERVAL  # the floor of a tenant's own interval
    scan_tick: timedelta = timedelta(seconds=60)
    domain_check_interval: timedelta = DEFAULT_SCAN_INTERVAL
    history: timedelta = timedelta(days=90)
    # Per tenant: the calls that send DNS questions to the blocklist operators on demand.
    check_limit: Limit = field(default_factory=lambda: Limit(CHECKS, per_minute=30, burst=10))
    tenant_scan_limit: Limit = field(default_factory=lambda: Limit(TENANT_SCANS, per_minute=12 / 60, burst=3))


def default_daily_budgets(catalogue: ZoneCatalogue) -> dict[str, int]:
    """What the IP lists' free-use terms allow a day (reputation.domain.zones)."""
    return {z.key: z.free_daily_queries for z in catalogue.ip_zones() if z.free_daily_queries is not None}


def _daily_budgets(catalogue: ZoneCatalogue, settings: Mapping[str, ZoneBudgetSetting]) -> dict[str, int]:
    budgets = default_daily_budgets(catalogue)
    for key, setting in settings.items():
        if setting.max_queries_per_day is None:
            continue
        zone = catalogue.get(key)
        if zone is not None and zone.kind is not ZoneKind.IP:
            raise InvalidArgument(
                "EE_REPUTATION_ZONE_BUDGETS",
                f"max_queries_per_day of {key!r}: daily budgets are for the periodic scans of IPs, and "
                f"{key!r} lists domains",
            )
        if setting.max_queries_per_day == 0:
            budgets.pop(key, None)
        else:
            budgets[key] = setting.max_queries_per_day
    return budgets


def build_config(own: ReputationSettings, dns: DnsEnvSettings) -> ReputationConfig:
    """Raises InvalidArgument naming the variable when a value does not fit the zone catalogue or the intervals."""
    interval = validate_scan_interval(timedelta(seconds=own.scan_interval_seconds), SCAN_INTERVAL_ENV)
    domain_interval = validate_scan_interval(
        timedelta(seconds=own.domain_check_interval_seconds), DOMAIN_CHECK_INTERVAL_ENV
    )
    known = [z.key for z in DEFAULT_CATALOGUE.zones]
    for env, keys in (("EE_REPUTATION_ZONE_NAMES", own.zone_names), ("EE_REPUTATION_ZONE_BUDGETS", own.zone_budgets)):
        for key in keys:
            if key not in known:
                raise InvalidArgument(env, f"unknown zone key {key!r} (known: {', '.join(known)})")
    zones = tuple(z.retarget(own.zone_names[z.key]) if z.key in own.zone_names else z for z in DEFAULT_CATALOGUE.zones)
    try:
        catalogue = ZoneCatalogue(zones)
    except ValueError as exc:
        raise InvalidArgument("EE_REPUTATION_ZONE_NAMES", str(exc)) from None
    default_ip = catalogue.select(own.ip_zones, "EE_REPUTATION_IP_ZONES", ZoneKind.IP) or catalogue.ip_zones()
    default_domain = (
        catalogue.select(own.domain_zones, "EE_REPUTATION_DOMAIN_ZONES", ZoneKind.DOMAIN) or catalogue.domain_zones()
    )
    budgets = {key: ZoneBudget(b.max_in_flight, b.max_qps, b.max_queries) for key, b in own.zone_budgets.items()}
    return ReputationConfig(
        dns=dns.resolver(),
        catalogue=catalogue,
        default_ip_zones=default_ip,
        default_domain_zones=default_domain,
        budgets=budgets,
        daily_budgets=_daily_budgets(catalogue, own.zone_budgets),
        max_in_flight=own.max_in_flight,
        scan_interval=interval,
        min_scan_interval=timedelta(seconds=own.min_scan_interval_seconds),
        scan_tick=timedelta(seconds=own.scan_tick_seconds),
        domain_check_interval=domain_interval,
        history=timedelta(days=own.history_days),
        check_limit=Limit(CHECKS, per_minute=own.checks_per_minute, burst=own.checks_burst),
        tenant_scan_limit=Limit(TENANT_SCANS, per_minute=own.tenant_scans_per_hour / 60, burst=own.tenant_scans_burst),
    )


def load_config() -> ReputationConfig:
    """From the environment; exits with one line per problem, never a stack trace."""
    own = load(ReputationSettings)
    dns = load(DnsEnvSettings)
    try:
        return build_config(own, dns)
    except InvalidArgument as exc:
        for violation in exc.violations:
            print(f"configuration error: {violation.field}: {violation.description}", file=sys.stderr)
        raise SystemExit(2) from None
