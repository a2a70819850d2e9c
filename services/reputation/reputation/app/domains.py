"""ValidateDomain: the DNS authentication checks of a domain (SPF, DKIM, DMARC, PTR, MX) plus the tenant's domain
blocklists.

Input is checked whole first (every bad field named, as the request spells it). An IP the tenant registered is
checked against its own HELO name; others against `helo_hostname`, if given. The domain and its tracking domains
are scanned on the tenant's domain lists after their health check, and each gets one `blocklist` verdict
(UNKNOWN, never PASS, when a list gave no verdict).
"""

from __future__ import annotations

from collections.abc import Sequence

from libs.auth import Caller
from libs.errors import InvalidArgument, Violations
from reputation.app.context import UseCases
from reputation.app.dns import DomainAuthRequest, ScanGroup
from reputation.app.zone_health import record_zone_health
from reputation.app.zones import tenant_zones
from reputation.domain.checks import DomainReport
from reputation.domain.scan import blocklist_check, publicize
from reputation.domain.validation import (
    IPAddress,
    normalize_domain,
    normalize_hostname,
    parse_domain_check,
    parse_each,
    raise_if_any,
    validate_tenant_id,
)

MAX_TRACKING_DOMAINS = 32


class DomainValidation(UseCases):
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
        """Checks a domain now (every ValidateDomain, within the caller's allowance of on-demand checks)."""
        tenant = caller.visible_tenant(validate_tenant_id(tenant_id) if tenant_id.strip() else "")
        name, addresses, selectors, helo, tracking = _validate(
            domain, ips, dkim_selectors, helo_hostname, tracking_domains
        )
        self._limit(caller, self._config.check_limit, "ValidateDomain")
        with self._uow() as uow:
            registered = uow.ips.helo_names(tenant, [str(a) for a in addresses]) if addresses and tenant else {}
            zones = tenant_zones(self._config, uow.tenant_zones.get(tenant)).domain_zones
        helo_names = {str(a): registered.get(str(a)) or helo for a in addresses if registered.get(str(a)) or helo}
        request = DomainAuthRequest(name, tuple(str(a) for a in addresses), tuple(selectors), helo_names)
        groups = [ScanGroup(zones, (name, *tracking))] if zones else []
        (report,), found = self._dns.check_domains([request], groups)
        with self._uow() as uow:
            record_zone_health(uow, found.health, self._clock.now())
            uow.commit()
        blocklists = tuple(blocklist_check(publicize(s)) for s in found.all_results)
        return DomainReport(name, report.checked_at, report.checks + blocklists)


def _validate(
    domain: str, ips: Sequence[str], selectors: Sequence[str], helo: str, tracking: Sequence[str]
) -> tuple[str, list[IPAddress], list[str], str, list[str]]:
    problems = Violations()
    name, addresses, chosen = parse_domain_check(domain, ips, selectors, problems)
    helo_name = ""
    if helo.strip():
        try:
            helo_name = normalize_hostname(helo, "helo_hostname")
        except InvalidArgument as exc:
            problems.items.extend(exc.violations)
    tracked = parse_each(tracking, normalize_domain, "tracking_domains", problems, max_items=MAX_TRACKING_DOMAINS)
    raise_if_any(problems)
    return name, addresses, chosen, helo_name, [d for d in tracked if d != name]
