"""ValidateDomain: the colleague's DNS authentication checks plus the domain blocklists of the tenant.

Input is checked whole first (every bad field named, as the request spells it). An IP the tenant
registered is checked against its own HELO name; others against `helo_hostname`, if given. The domain
and its tracking domains are scanned on the tenant's domain lists after their health check, and each
gets one `blocklist` verdict (UNKNOWN, never PASS, when a list gave no verdict).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import sqlalchemy as sa

from libs.auth import Caller
from libs.clock import Clock
from libs.db import Database
from libs.errors import InvalidArgument, Violations
from reputation.adapters.domain_checks import MAX_IPS, MAX_SELECTORS, DomainChecker
from reputation.adapters.tables import monitored_ips
from reputation.app import protos
from reputation.app.scanning import scan_async
from reputation.app.tenant_zones import choice_for
from reputation.app.zone_health import record_health
from reputation.config import ReputationConfig
from reputation.domain.checks import DomainReport
from reputation.domain.scan import blocklist_check
from reputation.domain.validation import (
    IPAddress,
    normalize_domain,
    normalize_hostname,
    parse_each,
    parse_ip,
    validate_selector,
    validate_tenant_id,
)
from reputation.domain.zones import Zone

MAX_TRACKING_DOMAINS = 32


class DomainValidation:
    def __init__(self, db: Database, config: ReputationConfig, clock: Clock) -> None:
        self.db = db
        self.config = config
        self.clock = clock

    def validate(
        self,
        caller: Caller,
        *,
        domain: str,
        ips: Sequence[str] = (),
        dkim_selectors: Sequence[str] = (),
        helo_hostname: str = "",
        tenant_id: str = "",
        tracking_domains: Sequence[str] = (),
    ) -> DomainReport:
        tenant = caller.visible_tenant(tenant_id.strip())
        if tenant:
            tenant = validate_tenant_id(tenant)
        name, addresses, selectors, helo, tracking = _validate(
            domain, ips, dkim_selectors, helo_hostname, tracking_domains
        )
        with self.db.transaction() as session:
            registered = {}
            if addresses and tenant:
                registered = dict(
                    session.execute(
                        sa.select(monitored_ips.c.address, monitored_ips.c.helo_hostname).where(
                            monitored_ips.c.tenant_id == tenant,
                            monitored_ips.c.address.in_([str(a) for a in addresses]),
                        )
                    ).all()
                )
            zones = choice_for(session, self.config, tenant).domain_zones
        helo_names = {str(a): registered.get(str(a)) or helo for a in addresses if registered.get(str(a)) or helo}
        report, health, scans = asyncio.run(self._run(name, addresses, selectors, helo_names, [name, *tracking], zones))
        record_health(self.db, health, self.clock.now())
        blocklists = tuple(blocklist_check(protos.publicize(s)) for s in scans)
        return DomainReport(name, report.checked_at, report.checks + blocklists)

    async def _run(
        self,
        name: str,
        addresses: list[IPAddress],
        selectors: list[str],
        helo_names: dict[str, str],
        blocklist_targets: list[str],
        zones: tuple[Zone, ...],
    ):  # type: ignore[no-untyped-def]
        checker = DomainChecker.from_settings(self.config.dns, clock=self.clock)
        auth = checker.validate_domain(name, [str(a) for a in addresses], selectors, helo_names=helo_names)
        lists = scan_async(self.config, self.clock, [(zones, blocklist_targets)] if zones else [])
        report, (health, scans) = await asyncio.gather(auth, lists)
        return report, health, scans


def _validate(
    domain: str, ips: Sequence[str], selectors: Sequence[str], helo: str, tracking: Sequence[str]
) -> tuple[str, list[IPAddress], list[str], str, list[str]]:
    problems = Violations()
    name, helo_name = "", ""
    try:
        name = normalize_domain(domain, "domain")
    except InvalidArgument as exc:
        problems.items.extend(exc.violations)
    addresses = parse_each(ips, parse_ip, "ips", problems, max_items=MAX_IPS)
    chosen = parse_each(selectors, validate_selector, "dkim_selectors", problems, max_items=MAX_SELECTORS)
    if helo.strip():
        try:
            helo_name = normalize_hostname(helo, "helo_hostname")
        except InvalidArgument as exc:
            problems.items.extend(exc.violations)
    tracked = parse_each(tracking, normalize_domain, "tracking_domains", problems, max_items=MAX_TRACKING_DOMAINS)
    problems.raise_if_any()
    return name, addresses, chosen, helo_name, [d for d in tracked if d != name]
