"""The reputation service's settings (EE_REPUTATION_*, EE_DNS_*), checked once into a `ReputationConfig`.

A bad value stops the process with one line naming the variable, as for the platform settings.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.config import load
from libs.errors import InvalidArgument
from reputation.adapters.dns_client import NAMESERVERS_ENV, TIMEOUT_ENV, DnsSettings
from reputation.adapters.dnsbl_scanner import ZoneBudget
from reputation.domain.scan import DEFAULT_SCAN_INTERVAL, validate_scan_interval
from reputation.domain.zones import DEFAULT_CATALOGUE, Zone, ZoneCatalogue, ZoneKind

SCAN_INTERVAL_ENV = "EE_REPUTATION_SCAN_INTERVAL_SECONDS"
DOMAIN_CHECK_INTERVAL_ENV = "EE_REPUTATION_DOMAIN_CHECK_INTERVAL_SECONDS"


class DnsEnvSettings(BaseSettings):
    """EE_DNS_*: the resolver every DNS question of the service goes to."""

    model_config = SettingsConfigDict(env_prefix="EE_DNS_", extra="ignore")

    nameservers: str = Field(
        default="",
        description="Comma-separated host:port of the operator's own recursive resolver(s); empty = /etc/resolv.conf",
    )
    timeout: str = Field(default="2", description="Seconds one DNS question may take, retries included (0.05-60)")


class ZoneBudgetSetting(BaseModel):
    max_in_flight: int = Field(default=64, ge=1, le=4096)
    max_qps: float | None = Field(default=None, gt=0)
    max_queries: int | None = Field(default=None, ge=1)


class ReputationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EE_REPUTATION_", extra="ignore")

    scan_interval_seconds: int = Field(
        default=int(DEFAULT_SCAN_INTERVAL.total_seconds()),
        description="Every watched IP is scanned once per interval (60 s to 7 days)",
    )
    domain_check_interval_seconds: int = Field(
        default=int(DEFAULT_SCAN_INTERVAL.total_seconds()),
        description="Every tenant's sending and tracking domains are checked once per interval (60 s to 7 days)",
    )
    scan_tick_seconds: float = Field(
        default=60, gt=0, le=3600, description="How often a replica looks whether the next scan slot has begun"
    )
    ip_zones: str = Field(default="", description="Comma-separated default IP zones (keys); empty = the 9 built-in")
    domain_zones: str = Field(default="", description="Comma-separated default domain zones; empty = DBL, SURBL, URIBL")
    zone_names: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {zone key: DNS name queried instead}, e.g. {"spamhaus-zen": "<key>.zen.dq.spamhaus.net"}',
    )
    zone_budgets: dict[str, ZoneBudgetSetting] = Field(
        default_factory=dict,
        description='JSON {zone key: {"max_in_flight", "max_qps", "max_queries"}} per scan',
    )
    max_in_flight: int = Field(default=512, ge=1, le=8192, description="DNS questions in flight during a scan")
    history_days: int = Field(default=90, ge=1, le=3650, description="Scan results kept per IP")


@dataclass(frozen=True)
class ReputationConfig:
    """Everything the use cases need from the environment, validated."""

    dns: DnsSettings
    catalogue: ZoneCatalogue = DEFAULT_CATALOGUE
    default_ip_zones: tuple[Zone, ...] = field(default_factory=DEFAULT_CATALOGUE.ip_zones)
    default_domain_zones: tuple[Zone, ...] = field(default_factory=DEFAULT_CATALOGUE.domain_zones)
    budgets: Mapping[str, ZoneBudget] = field(default_factory=dict)
    max_in_flight: int = 512
    scan_interval: timedelta = DEFAULT_SCAN_INTERVAL
    scan_tick: timedelta = timedelta(seconds=60)
    domain_check_interval: timedelta = DEFAULT_SCAN_INTERVAL
    history: timedelta = timedelta(days=90)


def build_config(own: ReputationSettings, dns: DnsEnvSettings) -> ReputationConfig:
    """Raises InvalidArgument naming the variable when a value does not make sense."""
    dns_settings = DnsSettings.from_env({NAMESERVERS_ENV: dns.nameservers, TIMEOUT_ENV: dns.timeout})
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
    default_ip = _default_zones(catalogue, own.ip_zones, ZoneKind.IP, "EE_REPUTATION_IP_ZONES")
    default_domain = _default_zones(catalogue, own.domain_zones, ZoneKind.DOMAIN, "EE_REPUTATION_DOMAIN_ZONES")
    budgets = {key: ZoneBudget(b.max_in_flight, b.max_qps, b.max_queries) for key, b in own.zone_budgets.items()}
    return ReputationConfig(
        dns=dns_settings,
        catalogue=catalogue,
        default_ip_zones=default_ip,
        default_domain_zones=default_domain,
        budgets=budgets,
        max_in_flight=own.max_in_flight,
        scan_interval=interval,
        scan_tick=timedelta(seconds=own.scan_tick_seconds),
        domain_check_interval=domain_interval,
        history=timedelta(days=own.history_days),
    )


def _default_zones(catalogue: ZoneCatalogue, value: str, kind: ZoneKind, env: str) -> tuple[Zone, ...]:
    handles = [h.strip() for h in value.split(",") if h.strip()]
    if not handles:
        return catalogue.ip_zones() if kind is ZoneKind.IP else catalogue.domain_zones()
    return catalogue.select(handles, env, kind)


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
